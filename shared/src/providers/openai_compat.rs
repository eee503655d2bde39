//! OpenAI's chat completions wire format and the servers that speak it: OpenAI,
//! DeepSeek, Mistral, vLLM, Ollama and any other OpenAI-compatible endpoint. Their
//! differences are the data in [`Flavour`].

use serde_json::Value;

use super::http::{join_url, Target, UpstreamRequest};
use super::sse::SseDecoder;
use super::{malformed, sse_error, ProviderKind, StreamEvent};
use crate::api::{ChatChunk, ChatRequest, ChatResponse, EmbeddingsRequest};
use crate::failover::{ErrorClass, UpstreamError};

/// How one OpenAI-compatible server differs from OpenAI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavour {
    pub kind: ProviderKind,
    pub default_base_url: &'static str,
    /// Accepts `stream_options.include_usage` (Mistral sends usage on its last chunk
    /// unasked and rejects unknown fields).
    pub accepts_stream_options: bool,
    /// Accepts `max_completion_tokens`; others get `max_tokens`.
    pub accepts_max_completion_tokens: bool,
    /// Field name for the sampling seed (`random_seed` at Mistral).
    pub seed_field: &'static str,
    /// Field carrying reasoning text in messages and deltas (`reasoning` at Ollama).
    pub reasoning_field: &'static str,
    /// How a final, partial assistant turn is marked as a prefill to continue.
    pub prefill: PrefillMarker,
}

/// What tells an OpenAI-compatible server to continue the final assistant turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefillMarker {
    /// Nothing: the turn is sent as it is (Ollama continues it; OpenAI ignores it).
    None,
    /// `"prefix": true` on that message (Mistral; DeepSeek's beta endpoint).
    PrefixFlag,
    /// `continue_final_message: true, add_generation_prompt: false` (vLLM).
    ContinueFinalMessage,
}

impl Flavour {
    pub const fn of(kind: ProviderKind) -> Flavour {
        let base = Flavour {
            kind,
            default_base_url: "https://api.openai.com/v1",
            accepts_stream_options: true,
            accepts_max_completion_tokens: true,
            seed_field: "seed",
            reasoning_field: "reasoning_content",
            prefill: PrefillMarker::None,
        };
        match kind {
            ProviderKind::Deepseek => Flavour { default_base_url: "https://api.deepseek.com", accepts_max_completion_tokens: false, prefill: PrefillMarker::PrefixFlag, ..base },
            ProviderKind::Mistral => Flavour {
                default_base_url: "https://api.mistral.ai/v1",
                accepts_stream_options: false,
                accepts_max_completion_tokens: false,
                seed_field: "random_seed",
                prefill: PrefillMarker::PrefixFlag,
                ..base
            },
            ProviderKind::Vllm => Flavour { default_base_url: "http://127.0.0.1:8000/v1", prefill: PrefillMarker::ContinueFinalMessage, ..base },
            ProviderKind::Ollama => Flavour {
                default_base_url: "http://127.0.0.1:11434/v1",
                accepts_max_completion_tokens: false,
                reasoning_field: "reasoning",
                ..base
            },
            _ => base,
        }
    }
}

fn bearer(target: &Target<'_>) -> Vec<(&'static str, String)> {
    let mut h = vec![("content-type", "application/json".to_string())];
    if let Some(k) = target.api_key {
        h.push(("authorization", format!("Bearer {k}")));
    }
    h
}

/// Serialises the request for this flavour, with the deployment's model name.
pub fn build_chat(f: Flavour, target: Target<'_>, req: &ChatRequest, stream: bool) -> UpstreamRequest {
    let mut body = req.clone();
    body.model = target.model.to_string();
    if stream {
        body.stream = Some(true);
        // Always ask for usage where the flavour accepts it: the gateway bills on it.
        body.stream_options = f.accepts_stream_options.then(|| {
            let mut o = req.stream_options.clone().unwrap_or_default();
            o.include_usage = Some(true);
            o
        });
    } else {
        body.stream = None;
        body.stream_options = None;
    }
    if !f.accepts_max_completion_tokens {
        if let Some(v) = body.max_completion_tokens.take() {
            body.max_tokens = Some(v);
        }
    }
    if f.seed_field != "seed" {
        if let Some(v) = body.seed.take() {
            body.extra.insert(f.seed_field.into(), Value::from(v));
        }
    }
    let ends_with_assistant = body.messages.last().is_some_and(|m| m.role == crate::api::Role::Assistant);
    let bytes = if ends_with_assistant && f.prefill != PrefillMarker::None {
        let mut v = serde_json::to_value(&body).expect("request serialises");
        match f.prefill {
            PrefillMarker::PrefixFlag => {
                if let Some(last) = v["messages"].as_array_mut().and_then(|m| m.last_mut()) {
                    last["prefix"] = Value::Bool(true);
                }
            }
            PrefillMarker::ContinueFinalMessage => {
                v["continue_final_message"] = Value::Bool(true);
                v["add_generation_prompt"] = Value::Bool(false);
            }
            PrefillMarker::None => {}
        }
        serde_json::to_vec(&v).expect("request serialises")
    } else {
        serde_json::to_vec(&body).expect("request serialises")
    };
    UpstreamRequest { method: "POST", url: join_url(target.base_url, "/chat/completions"), headers: bearer(&target), body: bytes }
}

pub fn build_embeddings(_f: Flavour, target: Target<'_>, req: &EmbeddingsRequest) -> UpstreamRequest {
    let mut req = req.clone();
    req.model = target.model.to_string();
    UpstreamRequest {
        method: "POST",
        url: join_url(target.base_url, "/embeddings"),
        headers: bearer(&target),
        body: serde_json::to_vec(&req).expect("embeddings request serialises"),
    }
}

/// Rewrites flavour-specific shapes into OpenAI's, in place.
fn normalise(f: Flavour, v: &mut Value, holder: &str) {
    let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) else { return };
    for c in choices {
        let Some(m) = c.get_mut(holder).and_then(Value::as_object_mut) else { continue };
        if f.reasoning_field != "reasoning_content" {
            if let Some(r) = m.remove(f.reasoning_field) {
                m.insert("reasoning_content".into(), r);
            }
        }
        // Mistral reasoning models send content as typed parts.
        if let Some(Value::Array(parts)) = m.get("content").cloned() {
            let (mut text, mut thinking) = (String::new(), String::new());
            for p in &parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => text.push_str(p.get("text").and_then(Value::as_str).unwrap_or("")),
                    Some("thinking") => {
                        for t in p.get("thinking").and_then(Value::as_array).into_iter().flatten() {
                            thinking.push_str(t.get("text").and_then(Value::as_str).unwrap_or(""));
                        }
                    }
                    _ => {}
                }
            }
            m.insert("content".into(), Value::String(text));
            if !thinking.is_empty() {
                m.insert("reasoning_content".into(), Value::String(thinking));
            }
        }
        // vLLM sends `tool_calls: []` on plain answers.
        if m.get("tool_calls").and_then(Value::as_array).is_some_and(Vec::is_empty) {
            m.remove("tool_calls");
        }
    }
}

fn fill_cached_tokens(v: &mut Value) {
    // DeepSeek reports cache hits as `prompt_cache_hit_tokens`.
    let Some(u) = v.get_mut("usage").and_then(Value::as_object_mut) else { return };
    if u.get("prompt_tokens_details").and_then(|d| d.get("cached_tokens")).is_none() {
        if let Some(hit) = u.get("prompt_cache_hit_tokens").cloned() {
            u.insert("prompt_tokens_details".into(), serde_json::json!({ "cached_tokens": hit }));
        }
    }
}

/// Flavours whose responses are OpenAI's shape exactly can skip the generic rewrite.
fn plain(f: Flavour) -> bool {
    matches!(f.kind, ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::Vllm)
}

pub fn parse_chat(f: Flavour, body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    if plain(f) {
        if let Ok(mut r) = serde_json::from_slice::<ChatResponse>(body) {
            for c in &mut r.choices {
                if c.message.tool_calls.as_ref().is_some_and(Vec::is_empty) {
                    c.message.tool_calls = None;
                }
            }
            return Ok(r);
        }
    }
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| UpstreamError::new(ErrorClass::Transient, Some(200), format!("provider sent invalid JSON: {e}")))?;
    normalise(f, &mut v, "message");
    fill_cached_tokens(&mut v);
    serde_json::from_value(v).map_err(|e| UpstreamError::new(ErrorClass::Transient, Some(200), format!("unexpected response shape: {e}")))
}

/// Decodes `data: {chunk}` frames ending in `data: [DONE]`.
#[derive(Debug)]
pub struct ChunkDecoder {
    flavour: Flavour,
    sse: SseDecoder,
    events: Vec<super::sse::SseEvent>,
}

impl ChunkDecoder {
    pub fn new(flavour: Flavour) -> Self {
        ChunkDecoder { flavour, sse: SseDecoder::default(), events: Vec::new() }
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        self.sse.feed(bytes, &mut self.events).map_err(sse_error)?;
        for ev in self.events.drain(..) {
            let data = ev.data.trim();
            if data == "[DONE]" {
                out.push(StreamEvent::Done);
                continue;
            }
            if plain(self.flavour) && !data.starts_with("{\"error\"") {
                if let Ok(chunk) = serde_json::from_str::<ChatChunk>(data) {
                    out.push(StreamEvent::Chunk(chunk));
                    continue;
                }
            }
            let mut v: Value = serde_json::from_str(data).map_err(malformed)?;
            if let Some(err) = v.get("error") {
                let msg = err.get("message").and_then(Value::as_str).unwrap_or("provider reported an error mid-stream");
                let code = err.get("code").or_else(|| err.get("type")).and_then(Value::as_str).map(str::to_string);
                out.push(StreamEvent::Error(UpstreamError::new(ErrorClass::StreamBroken { tokens_sent: 0 }, None, msg).with_code(code)));
                continue;
            }
            normalise(self.flavour, &mut v, "delta");
            fill_cached_tokens(&mut v);
            let chunk: ChatChunk = serde_json::from_value(v).map_err(malformed)?;
            out.push(StreamEvent::Chunk(chunk));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FinishReason, Message, Role};
    use crate::providers::StreamDecoder;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/providers/");

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{FIX}{p}")).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn decode(kind: ProviderKind, bytes: &[u8], split: usize) -> Vec<StreamEvent> {
        let mut d = StreamDecoder::new(kind, "id", 0);
        let mut out = Vec::new();
        for c in bytes.chunks(split) {
            d.feed(c, &mut out).unwrap();
        }
        d.finish(&mut out);
        out
    }

    fn text_of(events: &[StreamEvent]) -> (String, String) {
        let (mut text, mut reasoning) = (String::new(), String::new());
        for e in events {
            if let StreamEvent::Chunk(c) = e {
                for ch in &c.choices {
                    text.push_str(ch.delta.content.as_deref().unwrap_or(""));
                    reasoning.push_str(ch.delta.reasoning_content.as_deref().unwrap_or(""));
                }
            }
        }
        (text, reasoning)
    }

    fn last_usage(events: &[StreamEvent]) -> Option<crate::api::Usage> {
        events.iter().rev().find_map(|e| match e {
            StreamEvent::Chunk(c) => c.usage,
            _ => None,
        })
    }

    #[test]
    fn a_final_assistant_turn_is_marked_as_a_prefill_where_the_server_needs_it() {
        let req = ChatRequest { model: "m".into(), messages: vec![Message::text(Role::User, "q"), Message::text(Role::Assistant, "The partial")], ..Default::default() };
        let t = Target { base_url: "http://x/v1", api_key: None, model: "m", default_max_tokens: 16 };
        let body = |kind| serde_json::from_slice::<Value>(&build_chat(Flavour::of(kind), t, &req, true).body).unwrap();
        assert_eq!(body(ProviderKind::Mistral)["messages"][1]["prefix"], true);
        assert_eq!(body(ProviderKind::Deepseek)["messages"][1]["prefix"], true);
        let v = body(ProviderKind::Vllm);
        assert_eq!((v["continue_final_message"].clone(), v["add_generation_prompt"].clone()), (Value::Bool(true), Value::Bool(false)));
        let o = body(ProviderKind::Openai);
        assert!(o["messages"][1].get("prefix").is_none() && o.get("continue_final_message").is_none());
        let fresh = ChatRequest { messages: vec![Message::text(Role::User, "q")], ..req.clone() };
        assert!(serde_json::from_slice::<Value>(&build_chat(Flavour::of(ProviderKind::Mistral), t, &fresh, true).body).unwrap()["messages"][0].get("prefix").is_none());
        assert!(build_chat(Flavour::of(ProviderKind::Openai), t, &req, true).headers.iter().all(|(k, _)| *k != "authorization"), "no key, no header");
    }

    #[test]
    fn openai_non_stream_keeps_every_field() {
        let r = parse_chat(Flavour::of(ProviderKind::Openai), &fixture("openai/chat_completion.json")).unwrap();
        assert_eq!(r.model, "gpt-4o-2024-08-06");
        assert_eq!(r.id, "chatcmpl-ABfvaueLEMLNYbT8YzpJxsmiQ6HSY");
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Stop));
        assert!(r.choices[0].message.content.as_deref().unwrap().starts_with("I'm unable to provide real-time weather"));
        let u = r.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (14, 37, 51));
        assert_eq!(r.system_fingerprint.as_deref(), Some("fp_b40fb1c6fb"));
    }

    #[test]
    fn openai_tool_call_response() {
        let r = parse_chat(Flavour::of(ProviderKind::Openai), &fixture("openai/chat_tool_call.json")).unwrap();
        let calls = r.choices[0].message.tool_calls.as_ref().unwrap();
        assert_eq!(calls[0].function.name, "GetWeatherArgs");
        assert!(calls[0].function.arguments.contains("Edinburgh"));
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    }

    #[test]
    fn openai_stream_any_split() {
        let bytes = fixture("openai/chat_stream.sse");
        let whole = decode(ProviderKind::Openai, &bytes, bytes.len());
        for split in [1, 7, 64] {
            assert_eq!(decode(ProviderKind::Openai, &bytes, split), whole);
        }
        assert_eq!(whole.last(), Some(&StreamEvent::Done));
        let (text, _) = text_of(&whole);
        assert!(text.starts_with("I'm unable to provide real-time weather updates."), "{text}");
        let usage = last_usage(&whole).unwrap();
        assert_eq!(usage.prompt_tokens, 14);
        assert!(usage.completion_tokens > 0);
    }

    #[test]
    fn openai_tool_call_stream_accumulates_arguments() {
        let ev = decode(ProviderKind::Openai, &fixture("openai/chat_tool_call_stream.sse"), 13);
        let mut args = String::new();
        let mut name = None;
        let mut finish = None;
        for e in &ev {
            if let StreamEvent::Chunk(c) = e {
                for ch in &c.choices {
                    finish = finish.or(ch.finish_reason);
                    for t in ch.delta.tool_calls.iter().flatten() {
                        if let Some(f) = &t.function {
                            name = name.or(f.name.clone());
                            args.push_str(f.arguments.as_deref().unwrap_or(""));
                        }
                    }
                }
            }
        }
        assert_eq!(name.as_deref(), Some("get_weather"));
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(parsed["city"], "New York City");
        assert_eq!(finish, Some(FinishReason::ToolCalls));
    }

    #[test]
    fn deepseek_reasoning_and_cache_usage() {
        let r = parse_chat(Flavour::of(ProviderKind::Deepseek), &fixture("deepseek/chat_completion.json")).unwrap();
        assert!(r.choices[0].message.reasoning_content.as_deref().is_some_and(|s| !s.is_empty()));
        let u = r.usage.unwrap();
        assert!(u.reasoning_tokens() > 0);
        let raw: Value = serde_json::from_slice(&fixture("deepseek/chat_completion.json")).unwrap();
        assert_eq!(u.cached_tokens(), raw["usage"]["prompt_cache_hit_tokens"].as_u64().unwrap());

        let ev = decode(ProviderKind::Deepseek, &fixture("deepseek/chat_stream.sse"), 29);
        let (text, reasoning) = text_of(&ev);
        assert!(!reasoning.is_empty() && !text.is_empty());
        assert_eq!(ev.last(), Some(&StreamEvent::Done));
        assert!(last_usage(&ev).unwrap().completion_tokens > 0);
    }

    #[test]
    fn mistral_non_stream_and_thinking_parts() {
        let r = parse_chat(Flavour::of(ProviderKind::Mistral), &fixture("mistral/chat_completion.json")).unwrap();
        assert!(r.choices[0].message.content.as_deref().is_some_and(|s| !s.is_empty()));
        assert!(r.usage.unwrap().total_tokens > 0);
        let ev = decode(ProviderKind::Mistral, &fixture("mistral/chat_stream.sse"), 31);
        let (text, reasoning) = text_of(&ev);
        assert!(!reasoning.is_empty(), "thinking parts become reasoning_content");
        assert!(!text.is_empty());
        assert!(last_usage(&ev).is_some(), "mistral sends usage on its finish chunk");
    }

    #[test]
    fn vllm_and_ollama() {
        let r = parse_chat(Flavour::of(ProviderKind::Vllm), &fixture("ollama_vllm/vllm_chat_completion.json")).unwrap();
        assert!(r.choices[0].message.tool_calls.is_none(), "empty tool_calls dropped");
        assert!(r.usage.is_some());
        let ev = decode(ProviderKind::Vllm, &fixture("ollama_vllm/vllm_chat_stream.sse"), 17);
        assert_eq!(ev.last(), Some(&StreamEvent::Done));
        assert!(!text_of(&ev).0.is_empty());
        let r = parse_chat(Flavour::of(ProviderKind::Ollama), &fixture("ollama_vllm/ollama_chat_completion.json")).unwrap();
        assert_eq!(r.system_fingerprint.as_deref(), Some("fp_ollama"));
    }

    #[test]
    fn build_request_per_flavour() {
        let req = ChatRequest {
            model: "alias".into(),
            messages: vec![Message::text(Role::User, "hi")],
            max_completion_tokens: Some(5),
            seed: Some(7),
            ..Default::default()
        };
        let t = Target { base_url: "http://x/v1/", api_key: Some("sk"), model: "real-model", default_max_tokens: 1024 };
        let up = build_chat(Flavour::of(ProviderKind::Openai), t, &req, true);
        assert_eq!(up.url, "http://x/v1/chat/completions");
        assert_eq!(up.header("authorization"), Some("Bearer sk"));
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(b["model"], "real-model");
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_completion_tokens"], 5);
        let up = build_chat(Flavour::of(ProviderKind::Mistral), t, &req, true);
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert!(b.get("stream_options").is_none());
        assert_eq!(b["max_tokens"], 5);
        assert_eq!(b["random_seed"], 7);
        assert!(!format!("{up:?}").contains("sk"), "debug output must not leak the key");
    }

    #[test]
    fn in_band_error_and_malformed_chunk() {
        let mut d = StreamDecoder::new(ProviderKind::Openai, "id", 0);
        let mut out = Vec::new();
        d.feed(b"data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n", &mut out).unwrap();
        assert!(matches!(&out[0], StreamEvent::Error(e) if e.message == "boom"));
        let err = d.feed(b"data: {not json\n\n", &mut out).unwrap_err();
        assert!(matches!(err.class, ErrorClass::StreamBroken { .. }));
    }
}
