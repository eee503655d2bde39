//! Gemini `generateContent` / `streamGenerateContent?alt=sse` wire format: CRLF framing,
//! `": "` separators, usage repeated in every chunk, no `[DONE]`.

use std::io;

use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use crate::faults::Faults;
use crate::script::{self, Script};
use crate::wire::{json_response, sse_response, ErrorKind, Reply};

/// Google's front end writes `"key": value` with a space after the colon only.
struct GoogleFormatter;

impl serde_json::ser::Formatter for GoogleFormatter {
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

pub fn to_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoogleFormatter);
    v.serialize(&mut ser).expect("value serialises");
    out
}

pub fn turns(body: &Value) -> Vec<(String, String)> {
    body.get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let parts = c.get("parts").and_then(Value::as_array).cloned().unwrap_or_default();
            let is_tool = parts.iter().any(|p| p.get("functionResponse").is_some());
            let role = match (c.get("role").and_then(Value::as_str), is_tool) {
                (_, true) => "tool",
                (Some("model"), _) => "assistant",
                _ => "user",
            };
            let text: String = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
            (role.to_string(), text)
        })
        .collect()
}

pub fn error(kind: ErrorKind, extra: Vec<(&'static str, String)>) -> Response {
    let (code, status, message) = match kind {
        ErrorKind::ContextLength => (400, "INVALID_ARGUMENT", "The input token count (210000) exceeds the maximum number of tokens allowed (1048576)."),
        ErrorKind::MissingKey => {
            (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
        }
        ErrorKind::InvalidKey => (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
        ErrorKind::BadRequest | ErrorKind::ContentPolicy | ErrorKind::PrefillRejected => (400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
        ErrorKind::Status(429) => (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
        ErrorKind::Status(404) => (404, "NOT_FOUND", "models/unknown is not found for API version v1beta, or is not supported for generateContent."),
        ErrorKind::Status(503) => (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        ErrorKind::Status(504) => (504, "DEADLINE_EXCEEDED", "Deadline exceeded."),
        ErrorKind::Status(s) if s >= 500 => (s, "INTERNAL", "An internal error has occurred."),
        ErrorKind::Status(s) => (s, "FAILED_PRECONDITION", "Mock error."),
    };
    let mut err = json!({"code": code, "message": message, "status": status});
    if code == 429 {
        let delay = extra.iter().find(|(k, _)| *k == "retry-after").map(|(_, v)| v.clone()).unwrap_or_else(|| "1".into());
        err["details"] = json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{delay}s")}]);
    }
    let extra: Vec<_> = extra.into_iter().filter(|(k, _)| *k != "retry-after").collect();
    let mut body = serde_json::to_vec_pretty(&json!({"error": err})).unwrap();
    body.push(b'\n');
    json_response(code, &extra, body)
}

fn usage(r: &Reply, candidates: u64) -> Value {
    json!({"promptTokenCount": r.ask.prompt_tokens, "candidatesTokenCount": candidates, "totalTokenCount": r.ask.prompt_tokens + candidates})
}

fn response(r: &Reply, parts: Value, finish: Option<&str>, candidates: u64) -> Value {
    let mut cand = json!({"content": {"parts": parts, "role": "model"}});
    if let Some(f) = finish {
        cand["finishReason"] = json!(f);
        cand["index"] = json!(0);
    }
    json!({"candidates": [cand], "usageMetadata": usage(r, candidates), "modelVersion": r.model, "responseId": r.id})
}

fn call_part(name: &str) -> Value {
    json!({"functionCall": {"name": name, "args": {"city": "Paris"}}})
}

/// A prompt blocked by safety: 200 with `promptFeedback.blockReason`, no candidates.
pub fn blocked(r: &Reply) -> Response {
    let body = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage(r, 0), "modelVersion": r.model});
    json_response(200, &[], to_json(&body))
}

pub fn complete(r: &Reply) -> Response {
    let parts = match &r.tool {
        Some(name) => json!([call_part(name)]),
        None => json!([{"text": r.text()}]),
    };
    json_response(200, &[], to_json(&response(r, parts, Some("STOP"), r.completion_tokens())))
}

fn frame(v: &Value) -> Bytes {
    let mut b = b"data: ".to_vec();
    b.extend(to_json(v));
    b.extend_from_slice(b"\r\n\r\n");
    Bytes::from(b)
}

pub fn stream(r: &Reply, faults: Faults, end: script::End) -> Response {
    let mut tokens = Vec::new();
    let finish = match &r.tool {
        Some(name) => frame(&response(r, json!([call_part(name)]), Some("STOP"), r.completion_tokens())),
        None => {
            let (last, rest) = r.tokens.split_last().map(|(l, rest)| (l.clone(), rest)).unwrap_or_default();
            for (i, t) in rest.iter().enumerate() {
                tokens.push(frame(&response(r, json!([{"text": t}]), None, i as u64 + 1)));
            }
            frame(&response(r, json!([{"text": last}]), Some("STOP"), r.completion_tokens()))
        }
    };
    let error_event = frame(&json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}));
    // Gemini's finishing chunk is its terminator: `no_done` withholds it.
    let s = Script { head: Vec::new(), tokens, finish: vec![finish], terminator: Vec::new(), error_event };
    sse_response(&[], script::body(s, faults, end))
}
