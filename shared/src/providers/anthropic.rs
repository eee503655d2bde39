//! Anthropic Messages API (`POST /v1/messages`, `x-api-key`, `anthropic-version`).

use serde_json::{json, Map, Value};

use super::http::{join_url, Target, UpstreamRequest};
use super::sse::{SseDecoder, SseEvent};
use super::{malformed, sse_error, StreamEvent};
use crate::api::{
    ChatChunk, ChatRequest, ChatResponse, Choice, Content, ContentPart, Delta, FinishReason, FunctionCall, FunctionCallDelta, GatewayError, Message,
    ResponseMessage, Role, ToolCall, ToolCallDelta, Usage,
};
use crate::failover::{ErrorClass, UpstreamError};

pub const API_VERSION: &str = "2023-06-01";

fn image_block(url: &crate::api::ImageUrl) -> Value {
    match url.as_data_url() {
        Some((mime, data)) => json!({"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}),
        None => json!({"type": "image", "source": {"type": "url", "url": url.url}}),
    }
}

fn content_blocks(m: &Message) -> Vec<Value> {
    match &m.content {
        None => Vec::new(),
        Some(Content::Text(t)) if t.is_empty() => Vec::new(),
        Some(Content::Text(t)) => vec![json!({"type": "text", "text": t})],
        Some(Content::Parts(parts)) => parts
            .iter()
            .map(|p| match p {
                ContentPart::Text { text } => json!({"type": "text", "text": text}),
                ContentPart::ImageUrl { image_url } => image_block(image_url),
            })
            .collect(),
    }
}

fn tool_choice(v: &Value, parallel: Option<bool>) -> Option<Value> {
    let mut choice = match v {
        Value::String(s) if s == "auto" => json!({"type": "auto"}),
        Value::String(s) if s == "required" => json!({"type": "any"}),
        Value::String(s) if s == "none" => json!({"type": "none"}),
        Value::Object(o) => {
            let name = o.get("function")?.get("name")?.as_str()?;
            json!({"type": "tool", "name": name})
        }
        _ => return None,
    };
    if parallel == Some(false) {
        choice["disable_parallel_tool_use"] = Value::Bool(true);
    }
    Some(choice)
}

/// Translates an OpenAI-shaped request into a Messages API call.
pub fn build_chat(target: Target<'_>, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest, GatewayError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                system.push(m.text_content());
                continue;
            }
            Role::User => ("user", content_blocks(m)),
            Role::Assistant => {
                let mut b = content_blocks(m);
                for tc in m.tool_calls.iter().flatten() {
                    let input: Value = if tc.function.arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&tc.function.arguments).map_err(|_| {
                            GatewayError::invalid_param(format!("tool call {} has arguments that are not JSON", tc.id), "messages")
                        })?
                    };
                    b.push(json!({"type": "tool_use", "id": tc.id, "name": tc.function.name, "input": input}));
                }
                ("assistant", b)
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().ok_or_else(|| GatewayError::invalid_param("a tool message needs tool_call_id", "messages"))?;
                ("user", vec![json!({"type": "tool_result", "tool_use_id": id, "content": m.text_content()})])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    if turns.is_empty() {
        return Err(GatewayError::invalid_param("messages must contain at least one user or assistant message", "messages"));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));
    body.insert("max_tokens".into(), json!(req.output_cap().unwrap_or(target.default_max_tokens)));
    body.insert("messages".into(), Value::Array(turns.into_iter().map(|(r, b)| json!({"role": r, "content": b})).collect()));
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    let stops = req.stop_sequences();
    if !stops.is_empty() {
        body.insert("stop_sequences".into(), json!(stops));
    }
    if let Some(tools) = &req.tools {
        let t: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut o = json!({"name": t.function.name, "input_schema": t.function.parameters.clone().unwrap_or(json!({"type": "object"}))});
                if let Some(d) = &t.function.description {
                    o["description"] = json!(d);
                }
                o
            })
            .collect();
        body.insert("tools".into(), Value::Array(t));
    }
    if let Some(tc) = req.tool_choice.as_ref().and_then(|v| tool_choice(v, req.parallel_tool_calls)) {
        body.insert("tool_choice".into(), tc);
    }
    if let Some(u) = &req.user {
        body.insert("metadata".into(), json!({"user_id": u}));
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    let mut headers = vec![("content-type", "application/json".to_string()), ("anthropic-version", API_VERSION.to_string())];
    if let Some(k) = target.api_key {
        headers.push(("x-api-key", k.to_string()));
    }
    Ok(UpstreamRequest { method: "POST", url: join_url(target.base_url, "/v1/messages"), headers, body: serde_json::to_vec(&body).expect("serialises") })
}

pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

fn usage_of(u: &Value, output_tokens: Option<u64>) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("cache_read_input_tokens");
    let prompt = n("input_tokens") + cached + n("cache_creation_input_tokens");
    Usage::new(prompt, output_tokens.unwrap_or_else(|| n("output_tokens"))).with_cached(cached)
}

pub fn parse_chat(body: &[u8], now_s: u64) -> Result<ChatResponse, UpstreamError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| UpstreamError::new(ErrorClass::Transient, Some(200), format!("provider sent invalid JSON: {e}")))?;
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls = Vec::new();
    for b in v.get("content").and_then(Value::as_array).into_iter().flatten() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => thinking.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(ToolCall {
                id: b.get("id").and_then(Value::as_str).unwrap_or("").to_string(),
                kind: "function".into(),
                function: FunctionCall {
                    name: b.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                    arguments: b.get("input").map(|i| i.to_string()).unwrap_or_else(|| "{}".into()),
                },
            }),
            _ => {}
        }
    }
    let stop = v.get("stop_reason").and_then(Value::as_str).map(finish_reason);
    Ok(ChatResponse {
        id: v.get("id").and_then(Value::as_str).unwrap_or("").to_string(),
        object: "chat.completion".into(),
        created: now_s,
        model: v.get("model").and_then(Value::as_str).unwrap_or("").to_string(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: if text.is_empty() && !calls.is_empty() { None } else { Some(text) },
                reasoning_content: (!thinking.is_empty()).then_some(thinking),
                tool_calls: (!calls.is_empty()).then_some(calls),
                refusal: None,
            },
            finish_reason: stop,
            logprobs: None,
        }],
        usage: v.get("usage").map(|u| usage_of(u, None)),
        system_fingerprint: None,
    })
}

/// Decodes the Messages event sequence into OpenAI chunks.
#[derive(Debug)]
pub struct EventDecoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    created: u64,
    id: String,
    model: String,
    start_usage: Value,
    /// Anthropic block index → OpenAI tool-call index.
    tool_index: Vec<(u64, u32)>,
}

impl EventDecoder {
    pub fn new(created: u64) -> Self {
        EventDecoder { sse: SseDecoder::default(), events: Vec::new(), created, id: String::new(), model: String::new(), start_usage: Value::Null, tool_index: Vec::new() }
    }

    fn chunk(&self, delta: Delta, finish: Option<FinishReason>) -> ChatChunk {
        ChatChunk::new(&self.id, &self.model, self.created).with_delta(delta, finish)
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        self.sse.feed(bytes, &mut self.events).map_err(sse_error)?;
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            let v: Value = serde_json::from_str(&ev.data).map_err(malformed)?;
            let kind = v.get("type").and_then(Value::as_str).or(ev.event.as_deref()).unwrap_or("");
            self.event(kind, &v, out)?;
        }
        self.events = events;
        self.events.clear();
        Ok(())
    }

    fn event(&mut self, kind: &str, v: &Value, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        match kind {
            "message_start" => {
                let m = v.get("message").ok_or_else(|| malformed("message_start without message"))?;
                self.id = m.get("id").and_then(Value::as_str).unwrap_or("").to_string();
                self.model = m.get("model").and_then(Value::as_str).unwrap_or("").to_string();
                self.start_usage = m.get("usage").cloned().unwrap_or(Value::Null);
                out.push(StreamEvent::Chunk(self.chunk(Delta { role: Some("assistant".into()), content: Some(String::new()), ..Default::default() }, None)));
            }
            "content_block_start" => {
                let block = v.get("content_block").ok_or_else(|| malformed("content_block_start without block"))?;
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let at = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                    let idx = self.tool_index.len() as u32;
                    self.tool_index.push((at, idx));
                    let d = ToolCallDelta {
                        index: idx,
                        id: block.get("id").and_then(Value::as_str).map(str::to_string),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta { name: block.get("name").and_then(Value::as_str).map(str::to_string), arguments: Some(String::new()) }),
                    };
                    out.push(StreamEvent::Chunk(self.chunk(Delta { tool_calls: Some(vec![d]), ..Default::default() }, None)));
                }
            }
            "content_block_delta" => {
                let d = v.get("delta").ok_or_else(|| malformed("content_block_delta without delta"))?;
                let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let delta = match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => Delta::text(s("text")),
                    Some("thinking_delta") => Delta { reasoning_content: Some(s("thinking")), ..Default::default() },
                    Some("input_json_delta") => {
                        let at = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let idx = self.tool_index.iter().find(|(a, _)| *a == at).map(|(_, i)| *i).unwrap_or(0);
                        let args = s("partial_json");
                        if args.is_empty() {
                            return Ok(());
                        }
                        Delta {
                            tool_calls: Some(vec![ToolCallDelta { index: idx, function: Some(FunctionCallDelta { name: None, arguments: Some(args) }), ..Default::default() }]),
                            ..Default::default()
                        }
                    }
                    _ => return Ok(()),
                };
                out.push(StreamEvent::Chunk(self.chunk(delta, None)));
            }
            "message_delta" => {
                let stop = v.pointer("/delta/stop_reason").and_then(Value::as_str).map(finish_reason);
                let output = v.pointer("/usage/output_tokens").and_then(Value::as_u64);
                // Current API versions repeat input/cache counts here; older ones only in message_start.
                let mut base = self.start_usage.clone();
                if let (Some(b), Some(u)) = (base.as_object_mut(), v.get("usage").and_then(Value::as_object)) {
                    for (k, val) in u {
                        if !val.is_null() {
                            b.insert(k.clone(), val.clone());
                        }
                    }
                }
                let mut c = self.chunk(Delta::default(), stop);
                c.usage = Some(usage_of(&base, output));
                out.push(StreamEvent::Chunk(c));
            }
            "message_stop" => out.push(StreamEvent::Done),
            "error" => {
                let e = v.get("error").cloned().unwrap_or(Value::Null);
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("provider reported an error mid-stream");
                let code = e.get("type").and_then(Value::as_str).map(str::to_string);
                out.push(StreamEvent::Error(UpstreamError::new(ErrorClass::StreamBroken { tokens_sent: 0 }, None, msg).with_code(code)));
            }
            _ => {} // ping, content_block_stop and future event types
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{ProviderKind, StreamDecoder};

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/providers/anthropic/");

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{FIX}{p}")).unwrap()
    }

    fn decode(bytes: &[u8], split: usize) -> Vec<StreamEvent> {
        let mut d = StreamDecoder::new(ProviderKind::Anthropic, "x", 1);
        let mut out = Vec::new();
        for c in bytes.chunks(split) {
            d.feed(c, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn non_stream_text_and_usage() {
        let r = parse_chat(&fixture("message.json"), 5).unwrap();
        let raw: Value = serde_json::from_slice(&fixture("message.json")).unwrap();
        assert_eq!(r.model, raw["model"]);
        assert_eq!(r.id, raw["id"]);
        assert_eq!(r.choices[0].message.content.as_deref(), raw["content"][0]["text"].as_str());
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Stop));
        let u = r.usage.unwrap();
        assert_eq!(u.completion_tokens, raw["usage"]["output_tokens"].as_u64().unwrap());
        assert!(u.prompt_tokens >= raw["usage"]["input_tokens"].as_u64().unwrap());
    }

    #[test]
    fn non_stream_tool_use() {
        let r = parse_chat(&fixture("message_tool_use.json"), 5).unwrap();
        let raw: Value = serde_json::from_slice(&fixture("message_tool_use.json")).unwrap();
        let tu = raw["content"].as_array().unwrap().iter().find(|b| b["type"] == "tool_use").unwrap();
        let calls = r.choices[0].message.tool_calls.as_ref().unwrap();
        assert_eq!(calls[0].id, tu["id"].as_str().unwrap());
        assert_eq!(calls[0].function.name, tu["name"].as_str().unwrap());
        assert_eq!(serde_json::from_str::<Value>(&calls[0].function.arguments).unwrap(), tu["input"]);
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    }

    #[test]
    fn stream_with_padding_and_ping() {
        let bytes = fixture("message_stream.sse");
        let whole = decode(&bytes, bytes.len());
        assert_eq!(decode(&bytes, 3), whole);
        assert_eq!(whole.last(), Some(&StreamEvent::Done));
        let mut text = String::new();
        let mut fin = None;
        let mut usage = None;
        for e in &whole {
            if let StreamEvent::Chunk(c) = e {
                assert_eq!(c.model, "claude-haiku-4-5-20251001");
                text.push_str(c.choices[0].delta.content.as_deref().unwrap_or(""));
                fin = fin.or(c.choices[0].finish_reason);
                usage = usage.or(c.usage);
            }
        }
        assert!(text.starts_with("The weather in San Francisco, CA is currently:"), "{text}");
        assert_eq!(fin, Some(FinishReason::Stop));
        assert!(usage.unwrap().completion_tokens > 8);
        assert!(usage.unwrap().prompt_tokens >= 770);
    }

    #[test]
    fn stream_tool_use() {
        let ev = decode(&fixture("message_stream_tool_use.sse"), 11);
        let mut args = String::new();
        let mut first = None;
        for e in &ev {
            if let StreamEvent::Chunk(c) = e {
                for t in c.choices[0].delta.tool_calls.iter().flatten() {
                    if first.is_none() {
                        first = Some(t.clone());
                    }
                    args.push_str(t.function.as_ref().and_then(|f| f.arguments.as_deref()).unwrap_or(""));
                }
            }
        }
        let first = first.unwrap();
        assert_eq!(first.id.as_deref(), Some("toolu_018acGYLtfR52q9yDbWaEdQZ"));
        assert_eq!(first.function.unwrap().name.as_deref(), Some("get_weather"));
        let v: Value = serde_json::from_str(&args).unwrap();
        assert!(v["location"].as_str().unwrap().starts_with("San Francisco"));
    }

    #[test]
    fn in_stream_error_event() {
        let ev = decode(&fixture("stream_error_event.sse"), 5);
        assert!(matches!(ev.last(), Some(StreamEvent::Error(e)) if e.provider_code.as_deref() == Some("overloaded_error")));
    }

    #[test]
    fn docs_stream_matches() {
        let ev = decode(&fixture("message_stream_docs.sse"), 9);
        assert_eq!(ev.last(), Some(&StreamEvent::Done));
    }

    #[test]
    fn build_translates_system_tools_and_tool_results() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "stop": "END"
        }))
        .unwrap();
        let t = Target { base_url: "http://a", api_key: Some("k"), model: "claude-x", default_max_tokens: 1000 };
        let up = build_chat(t, &req, true).unwrap();
        assert_eq!(up.url, "http://a/v1/messages");
        assert_eq!(up.header("x-api-key"), Some("k"));
        assert_eq!(up.header("anthropic-version"), Some(API_VERSION));
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(b["system"], "be brief");
        assert_eq!(b["max_tokens"], 1000);
        assert_eq!(b["messages"][0]["content"][1]["source"]["media_type"], "image/png");
        assert_eq!(b["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(b["messages"][1]["content"][0]["input"]["city"], "Paris");
        assert_eq!(b["messages"][2]["content"][0]["tool_use_id"], "call_1");
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(b["tool_choice"]["type"], "any");
        assert_eq!(b["stop_sequences"][0], "END");
    }
}
