//! Anthropic Messages wire format: named SSE events, `ping`, padding inside JSON,
//! no `[DONE]`, in-stream `error` events.

use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::content::text_of;
use crate::faults::Faults;
use crate::script::{self, Script};
use crate::wire::{json_response, sse_response, ErrorKind, Reply};

pub fn turns(body: &Value) -> Vec<(String, String)> {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let content = m.get("content").unwrap_or(&Value::Null);
            let is_tool = content.as_array().is_some_and(|a| a.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")));
            let role = if is_tool { "tool" } else { m.get("role").and_then(Value::as_str).unwrap_or("") };
            (role.to_string(), text_of(content))
        })
        .collect()
}

fn headers(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("request-id", format!("req_{id}")),
        ("anthropic-ratelimit-requests-limit", "4000".into()),
        ("anthropic-ratelimit-requests-remaining", "3999".into()),
        ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:00Z".into()),
    ]
}

pub fn error(kind: ErrorKind, extra: Vec<(&'static str, String)>) -> Response {
    let (status, typ, message) = match kind {
        ErrorKind::ContextLength => (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        ErrorKind::ContentPolicy => (400, "invalid_request_error", "Output blocked by content filtering policy"),
        ErrorKind::MissingKey => (401, "authentication_error", "x-api-key header is required"),
        ErrorKind::InvalidKey => (401, "authentication_error", "invalid x-api-key"),
        ErrorKind::BadRequest => (400, "invalid_request_error", "anthropic-version: header is required"),
        ErrorKind::PrefillRejected => (400, "invalid_request_error", "This model does not support assistant message prefill. The conversation must end with a user message."),
        ErrorKind::Status(403) => (403, "permission_error", "Your API key does not have permission to use the specified resource."),
        ErrorKind::Status(404) => (404, "not_found_error", "The requested resource could not be found."),
        ErrorKind::Status(413) => (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
        ErrorKind::Status(429) => (429, "rate_limit_error", "This request would exceed your organization's rate limit."),
        ErrorKind::Status(529) => (529, "overloaded_error", "Overloaded"),
        ErrorKind::Status(s) if s >= 500 => (s, "api_error", "Internal server error"),
        ErrorKind::Status(s) => (s, "invalid_request_error", "Mock error."),
    };
    let body = json!({"type": "error", "error": {"type": typ, "message": message}, "request_id": "req_mock"});
    let mut h = headers("mock");
    h.push(("x-should-retry", (status >= 500 || status == 429 || status == 408).to_string()));
    h.extend(extra);
    json_response(status, &h, serde_json::to_vec(&body).unwrap())
}

fn usage(r: &Reply) -> Value {
    json!({"input_tokens": r.ask.prompt_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": r.completion_tokens()})
}

fn msg_id(r: &Reply) -> String {
    format!("msg_{}", r.id)
}

pub fn complete(r: &Reply) -> Response {
    let (content, stop) = match &r.tool {
        Some(name) => (json!([{"type": "tool_use", "id": format!("toolu_{}", r.id), "name": name, "input": {"city": "Paris"}}]), "tool_use"),
        None => (json!([{"type": "text", "text": r.text()}]), "end_turn"),
    };
    let body = json!({"model": r.model, "id": msg_id(r), "type": "message", "role": "assistant", "content": content,
        "stop_reason": stop, "stop_sequence": null, "usage": usage(r)});
    json_response(200, &headers(&r.id), serde_json::to_vec(&body).unwrap())
}

/// One event; `pad` spaces before the final brace, as the real API sends.
fn event(name: &str, v: &Value, pad: usize) -> Bytes {
    let s = serde_json::to_string(v).unwrap();
    let (body, last) = s.split_at(s.len() - 1);
    Bytes::from(format!("event: {name}\ndata: {body}{}{last}\n\n", " ".repeat(pad)))
}

pub fn stream(r: &Reply, faults: Faults, end: script::End) -> Response {
    let mut start_usage = usage(r);
    start_usage["output_tokens"] = json!(1);
    let mut head = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": {"model": r.model, "id": msg_id(r), "type": "message", "role": "assistant", "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
        3,
    )];
    let mut tokens = Vec::new();
    let stop = match &r.tool {
        Some(name) => {
            head.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": format!("toolu_{}", r.id), "name": name, "input": {}}}),
                5,
            ));
            head.push(Bytes::from_static(b"event: ping\ndata: {\"type\": \"ping\"}\n\n"));
            for piece in ["", "{\"city\": ", "\"Paris\"}"] {
                tokens.push(event("content_block_delta", &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}), 2));
            }
            "tool_use"
        }
        None => {
            head.push(event("content_block_start", &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}), 11));
            head.push(Bytes::from_static(b"event: ping\ndata: {\"type\": \"ping\"}\n\n"));
            for (i, t) in r.tokens.iter().enumerate() {
                tokens.push(event("content_block_delta", &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}), i % 7));
            }
            "end_turn"
        }
    };
    let finish = vec![
        event("content_block_stop", &json!({"type": "content_block_stop", "index": 0}), 1),
        event("message_delta", &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": usage(r)}), 4),
    ];
    let terminator = vec![event("message_stop", &json!({"type": "message_stop"}), 2)];
    let error_event = Bytes::from_static(b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n");
    sse_response(&headers(&r.id), script::body(Script { head, tokens, finish, terminator, error_event }, faults, end))
}
