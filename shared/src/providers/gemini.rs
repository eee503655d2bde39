//! Google Gemini API (`models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
//! `x-goog-api-key`). Streams are CRLF-framed, every chunk is a whole response, and
//! there is no `[DONE]`: a clean close after a finish reason ends the answer.

use serde_json::{json, Map, Value};

use super::http::{join_url, Target, UpstreamRequest};
use super::sse::{SseDecoder, SseEvent};
use super::{malformed, sse_error, StreamEvent};
use crate::api::{
    ChatChunk, ChatRequest, ChatResponse, Choice, Content, ContentPart, Delta, FinishReason, FunctionCall, FunctionCallDelta, GatewayError, Message,
    ResponseMessage, Role, ToolCall, ToolCallDelta, Usage,
};
use crate::failover::{ErrorClass, UpstreamError};

fn parts(m: &Message) -> Vec<Value> {
    match &m.content {
        None => Vec::new(),
        Some(Content::Text(t)) if t.is_empty() => Vec::new(),
        Some(Content::Text(t)) => vec![json!({"text": t})],
        Some(Content::Parts(ps)) => ps
            .iter()
            .map(|p| match p {
                ContentPart::Text { text } => json!({"text": text}),
                ContentPart::ImageUrl { image_url } => match image_url.as_data_url() {
                    Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
                    None => json!({"fileData": {"fileUri": image_url.url}}),
                },
            })
            .collect(),
    }
}

fn tool_config(v: &Value) -> Option<Value> {
    let cfg = match v {
        Value::String(s) if s == "auto" => json!({"mode": "AUTO"}),
        Value::String(s) if s == "required" => json!({"mode": "ANY"}),
        Value::String(s) if s == "none" => json!({"mode": "NONE"}),
        Value::Object(o) => json!({"mode": "ANY", "allowedFunctionNames": [o.get("function")?.get("name")?]}),
        _ => return None,
    };
    Some(json!({"functionCallingConfig": cfg}))
}

pub fn build_chat(target: Target<'_>, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest, GatewayError> {
    let mut system = Vec::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, p) = match m.role {
            Role::System | Role::Developer => {
                system.push(json!({"text": m.text_content()}));
                continue;
            }
            Role::User => ("user", parts(m)),
            Role::Assistant => {
                let mut p = parts(m);
                for tc in m.tool_calls.iter().flatten() {
                    let args: Value = serde_json::from_str(&tc.function.arguments).unwrap_or(json!({}));
                    p.push(json!({"functionCall": {"name": tc.function.name, "args": args}}));
                }
                ("model", p)
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or("");
                // Gemini answers function calls by name: find the call this result answers.
                let name = req
                    .messages
                    .iter()
                    .flat_map(|x| x.tool_calls.iter().flatten())
                    .find(|tc| tc.id == id)
                    .map(|tc| tc.function.name.clone())
                    .or_else(|| m.name.clone())
                    .ok_or_else(|| GatewayError::invalid_param(format!("tool message {id:?} answers no earlier tool call"), "messages"))?;
                let text = m.text_content();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"result": text}),
                };
                ("user", vec![json!({"functionResponse": {"name": name, "response": response}})])
            }
        };
        if p.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some((r, b)) if *r == role => b.extend(p),
            _ => contents.push((role, p)),
        }
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents.into_iter().map(|(r, p)| json!({"role": r, "parts": p})).collect()));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let mut gen = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            gen.insert(k.into(), v);
        }
    };
    put("temperature", req.temperature.map(|x| json!(x)));
    put("topP", req.top_p.map(|x| json!(x)));
    put("maxOutputTokens", req.output_cap().map(|x| json!(x)));
    put("candidateCount", req.n.map(|x| json!(x)));
    put("seed", req.seed.map(|x| json!(x)));
    put("presencePenalty", req.presence_penalty.map(|x| json!(x)));
    put("frequencyPenalty", req.frequency_penalty.map(|x| json!(x)));
    let stops = req.stop_sequences();
    put("stopSequences", (!stops.is_empty()).then(|| json!(stops)));
    if let Some(rf) = &req.response_format {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => put("responseMimeType", Some(json!("application/json"))),
            Some("json_schema") => {
                put("responseMimeType", Some(json!("application/json")));
                put("responseJsonSchema", rf.pointer("/json_schema/schema").cloned());
            }
            _ => {}
        }
    }
    if !gen.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gen));
    }
    if let Some(tools) = &req.tools {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.function.name});
                if let Some(desc) = &t.function.description {
                    d["description"] = json!(desc);
                }
                if let Some(p) = &t.function.parameters {
                    d["parametersJsonSchema"] = p.clone();
                }
                d
            })
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if let Some(tc) = req.tool_choice.as_ref().and_then(tool_config) {
        body.insert("toolConfig".into(), tc);
    }
    let path = if stream { format!("/models/{}:streamGenerateContent?alt=sse", target.model) } else { format!("/models/{}:generateContent", target.model) };
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(k) = target.api_key {
        headers.push(("x-goog-api-key", k.to_string()));
    }
    Ok(UpstreamRequest { method: "POST", url: join_url(target.base_url, &path), headers, body: serde_json::to_vec(&body).expect("serialises") })
}

pub fn finish_reason(r: &str, has_calls: bool) -> FinishReason {
    match r {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => FinishReason::ContentFilter,
        _ if has_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

fn usage_of(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage::new(n("promptTokenCount"), n("candidatesTokenCount") + thoughts).with_cached(n("cachedContentTokenCount")).with_reasoning(thoughts)
}

/// What one candidate holds: visible text, thought text, and function calls.
struct CandidateParts {
    text: String,
    thoughts: String,
    calls: Vec<(String, String)>,
    finish: Option<String>,
}

fn candidate(v: &Value) -> Result<CandidateParts, UpstreamError> {
    if let Some(block) = v.pointer("/promptFeedback/blockReason").and_then(Value::as_str) {
        return Err(UpstreamError::new(ErrorClass::ContentPolicy, Some(200), format!("prompt blocked by provider: {block}")).with_code(Some(block.to_string())));
    }
    let c = v.pointer("/candidates/0").cloned().unwrap_or(Value::Null);
    let mut out = CandidateParts { text: String::new(), thoughts: String::new(), calls: Vec::new(), finish: c.get("finishReason").and_then(Value::as_str).map(str::to_string) };
    for p in c.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
        if let Some(fc) = p.get("functionCall") {
            let name = fc.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            out.calls.push((name, fc.get("args").map(|a| a.to_string()).unwrap_or_else(|| "{}".into())));
        } else if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                out.thoughts.push_str(t);
            } else {
                out.text.push_str(t);
            }
        }
    }
    Ok(out)
}

pub fn parse_chat(body: &[u8], now_s: u64) -> Result<ChatResponse, UpstreamError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| UpstreamError::new(ErrorClass::Transient, Some(200), format!("provider sent invalid JSON: {e}")))?;
    let c = candidate(&v)?;
    let calls: Vec<ToolCall> = c
        .calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCall { id: format!("call_{i}"), kind: "function".into(), function: FunctionCall { name: name.clone(), arguments: args.clone() } })
        .collect();
    let finish = c.finish.as_deref().map(|r| finish_reason(r, !calls.is_empty()));
    Ok(ChatResponse {
        id: v.get("responseId").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| format!("gemini-{now_s}")),
        object: "chat.completion".into(),
        created: now_s,
        model: v.get("modelVersion").and_then(Value::as_str).unwrap_or("").to_string(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: if c.text.is_empty() && !calls.is_empty() { None } else { Some(c.text) },
                reasoning_content: (!c.thoughts.is_empty()).then_some(c.thoughts),
                tool_calls: (!calls.is_empty()).then_some(calls),
                refusal: None,
            },
            finish_reason: finish,
            logprobs: None,
        }],
        usage: v.get("usageMetadata").map(usage_of),
        system_fingerprint: None,
    })
}

#[derive(Debug)]
pub struct ChunkDecoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    id: String,
    created: u64,
    started: bool,
    calls: u32,
    finished: bool,
}

impl ChunkDecoder {
    pub fn new(id: &str, created: u64) -> Self {
        ChunkDecoder { sse: SseDecoder::default(), events: Vec::new(), id: id.to_string(), created, started: false, calls: 0, finished: false }
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        self.sse.feed(bytes, &mut self.events).map_err(sse_error)?;
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            let v: Value = serde_json::from_str(&ev.data).map_err(malformed)?;
            if let Some(e) = v.get("error") {
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("provider reported an error mid-stream");
                let code = e.get("status").and_then(Value::as_str).map(str::to_string);
                out.push(StreamEvent::Error(UpstreamError::new(ErrorClass::StreamBroken { tokens_sent: 0 }, None, msg).with_code(code)));
                continue;
            }
            let c = match candidate(&v) {
                Ok(c) => c,
                Err(e) => {
                    out.push(StreamEvent::Error(e));
                    continue;
                }
            };
            let model = v.get("modelVersion").and_then(Value::as_str).unwrap_or("");
            if let Some(id) = v.get("responseId").and_then(Value::as_str) {
                self.id = id.to_string();
            }
            let mut delta = Delta::default();
            if !self.started {
                delta.role = Some("assistant".into());
                self.started = true;
            }
            if !c.text.is_empty() || c.calls.is_empty() {
                delta.content = Some(c.text);
            }
            if !c.thoughts.is_empty() {
                delta.reasoning_content = Some(c.thoughts);
            }
            if !c.calls.is_empty() {
                let calls = c
                    .calls
                    .into_iter()
                    .map(|(name, args)| {
                        let i = self.calls;
                        self.calls += 1;
                        ToolCallDelta { index: i, id: Some(format!("call_{i}")), kind: Some("function".into()), function: Some(FunctionCallDelta { name: Some(name), arguments: Some(args) }) }
                    })
                    .collect();
                delta.tool_calls = Some(calls);
            }
            let finish = c.finish.as_deref().map(|r| finish_reason(r, self.calls > 0));
            let mut chunk = ChatChunk::new(&self.id, model, self.created).with_delta(delta, finish);
            if finish.is_some() {
                self.finished = true;
                chunk.usage = v.get("usageMetadata").map(usage_of);
            }
            out.push(StreamEvent::Chunk(chunk));
        }
        self.events = events;
        self.events.clear();
        Ok(())
    }

    /// End of body: complete only if a finish reason arrived and no frame is half-read.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.finished && !self.sse.has_partial() {
            out.push(StreamEvent::Done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{ProviderKind, StreamDecoder};

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/providers/gemini/");

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{FIX}{p}")).unwrap()
    }

    #[test]
    fn non_stream() {
        let r = parse_chat(&fixture("generate_content.json"), 9).unwrap();
        assert_eq!(r.model, "gemini-2.0-flash");
        assert!(r.choices[0].message.content.as_deref().unwrap().contains("Mountain View, California"));
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Stop));
        let u = r.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (7, 22, 29));
    }

    #[test]
    fn crlf_stream_done_only_on_clean_close() {
        let bytes = fixture("stream_generate_content.sse");
        let mut d = StreamDecoder::new(ProviderKind::Gemini, "gen-1", 1);
        let mut out = Vec::new();
        for c in bytes.chunks(5) {
            d.feed(c, &mut out).unwrap();
        }
        d.finish(&mut out);
        assert_eq!(out.last(), Some(&StreamEvent::Done));
        let mut text = String::new();
        let mut usage = None;
        for e in &out {
            if let StreamEvent::Chunk(c) = e {
                text.push_str(c.choices[0].delta.content.as_deref().unwrap_or(""));
                usage = usage.or(c.usage);
            }
        }
        assert_eq!(text, "The capital of Wyoming is **Cheyenne**.\n");
        assert_eq!(usage.unwrap().completion_tokens, 10);

        // Cut before the finishing chunk: no Done.
        let cut = &bytes[..bytes.len() / 2];
        let mut d = StreamDecoder::new(ProviderKind::Gemini, "gen-1", 1);
        let mut out = Vec::new();
        d.feed(cut, &mut out).unwrap();
        d.finish(&mut out);
        assert!(!out.contains(&StreamEvent::Done));
    }

    #[test]
    fn build_request() {
        let req: ChatRequest = serde_json::from_slice(&serde_json::to_vec(&json!({
            "model": "g",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}
            ],
            "temperature": 0.5, "max_tokens": 9, "stop": ["x"],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        })).unwrap())
        .unwrap();
        let t = Target { base_url: "http://g/v1beta", api_key: Some("gk"), model: "gemini-2.0-flash", default_max_tokens: 1 };
        let up = build_chat(t, &req, true).unwrap();
        assert_eq!(up.url, "http://g/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse");
        assert_eq!(up.header("x-goog-api-key"), Some("gk"));
        let b: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "sys");
        assert_eq!(b["contents"][1]["role"], "model");
        assert_eq!(b["contents"][1]["parts"][0]["functionCall"]["args"]["a"], 1);
        assert_eq!(b["contents"][2]["parts"][0]["functionResponse"]["name"], "f");
        assert_eq!(b["generationConfig"]["maxOutputTokens"], 9);
        assert_eq!(b["generationConfig"]["stopSequences"][0], "x");
        assert_eq!(b["tools"][0]["functionDeclarations"][0]["name"], "f");
        let fix: Value = serde_json::from_slice(&fixture("generate_content_request.json")).unwrap();
        assert!(fix["generationConfig"]["maxOutputTokens"].is_number(), "our field names match the docs' request");
    }
}
