//! OpenAI chat completions wire format (also what DeepSeek, Mistral, vLLM and Ollama speak).

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
        .filter(|m| !matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer")))
        .map(|m| (m.get("role").and_then(Value::as_str).unwrap_or("").to_string(), text_of(m.get("content").unwrap_or(&Value::Null))))
        .collect()
}

fn rate_headers(req_remaining: u32) -> Vec<(&'static str, String)> {
    vec![
        ("x-request-id", format!("req_mock{req_remaining}")),
        ("openai-version", "2020-10-01".into()),
        ("openai-processing-ms", "1".into()),
        ("x-ratelimit-limit-requests", "10000".into()),
        ("x-ratelimit-remaining-requests", req_remaining.to_string()),
        ("x-ratelimit-reset-requests", "6ms".into()),
        ("x-ratelimit-limit-tokens", "30000000".into()),
        ("x-ratelimit-remaining-tokens", "29999000".into()),
        ("x-ratelimit-reset-tokens", "2ms".into()),
    ]
}

pub fn error(kind: ErrorKind, headers: Vec<(&'static str, String)>) -> Response {
    let (status, message, typ, param, code) = match kind {
        ErrorKind::ContextLength => (
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 210000 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            Some("messages"),
            Some("context_length_exceeded"),
        ),
        ErrorKind::ContentPolicy => (
            400,
            "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
            "invalid_request_error",
            None,
            Some("content_policy_violation"),
        ),
        ErrorKind::MissingKey => (
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            None,
        ),
        ErrorKind::InvalidKey => {
            (401, "Incorrect API key provided: invalid. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", None, Some("invalid_api_key"))
        }
        ErrorKind::BadRequest | ErrorKind::PrefillRejected => (400, "We could not parse the JSON body of your request.", "invalid_request_error", None, None),
        ErrorKind::Status(429) => (429, "Rate limit reached for requests. Please try again in 1s.", "requests", None, Some("rate_limit_exceeded")),
        ErrorKind::Status(s) if s >= 500 => (s, "The server had an error while processing your request. Sorry about that!", "server_error", None, None),
        ErrorKind::Status(s) => (s, "Mock error.", "invalid_request_error", None, None),
    };
    let body = json!({"error": {"message": message, "type": typ, "param": param, "code": code}});
    let mut h = rate_headers(9_999);
    h.extend(headers);
    json_response(status, &h, serde_json::to_vec_pretty(&body).unwrap())
}

fn usage(r: &Reply) -> Value {
    let c = r.completion_tokens();
    let mut u = json!({"prompt_tokens": r.ask.prompt_tokens, "completion_tokens": c, "total_tokens": r.ask.prompt_tokens + c,
        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": r.reasoning.len()}});
    if r.model.starts_with("deepseek") {
        u["prompt_cache_hit_tokens"] = json!(0);
        u["prompt_cache_miss_tokens"] = json!(r.ask.prompt_tokens);
    }
    u
}

fn tool_call(r: &Reply) -> Option<Value> {
    r.tool.as_ref().map(|name| json!({"id": format!("call_{}", r.id), "type": "function", "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}}))
}

pub fn complete(r: &Reply) -> Response {
    let mut message = json!({"role": "assistant", "content": r.text(), "refusal": null});
    if !r.reasoning.is_empty() {
        message["reasoning_content"] = json!(r.reasoning.concat());
    }
    let finish = if let Some(tc) = tool_call(r) {
        message["content"] = Value::Null;
        message["tool_calls"] = json!([tc]);
        "tool_calls"
    } else {
        "stop"
    };
    let body = json!({"id": r.id, "object": "chat.completion", "created": r.created, "model": r.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage(r), "system_fingerprint": "fp_mock"});
    json_response(200, &rate_headers(9_999), serde_json::to_vec(&body).unwrap())
}

fn frame(v: &Value) -> Bytes {
    Bytes::from(format!("data: {}\n\n", serde_json::to_string(v).unwrap()))
}

pub fn stream(r: &Reply, faults: Faults, end: script::End) -> Response {
    // Mistral sends usage on the finish chunk unasked; DeepSeek too when asked; OpenAI in a
    // separate `choices: []` chunk when asked.
    let usage_on_finish = r.model.starts_with("mistral") || r.model.starts_with("magistral") || (r.include_usage && r.model.starts_with("deepseek"));
    let separate_usage = r.include_usage && !usage_on_finish;
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut c = json!({"id": r.id, "object": "chat.completion.chunk", "created": r.created, "model": r.model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if r.include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let first_content = if r.tool.is_some() { Value::Null } else { json!("") };
    let mut head = vec![frame(&chunk(json!({"role": "assistant", "content": first_content, "refusal": null}), None))];
    for t in &r.reasoning {
        head.push(frame(&chunk(json!({"content": null, "reasoning_content": t}), None)));
    }
    let mut tokens: Vec<Bytes> = r.tokens.iter().map(|t| frame(&chunk(json!({"content": t}), None))).collect();
    let mut finish_reason = "stop";
    if let Some(tc) = tool_call(r) {
        finish_reason = "tool_calls";
        let args = tc["function"]["arguments"].as_str().unwrap().to_string();
        let mut first = tc.clone();
        first["index"] = json!(0);
        first["function"]["arguments"] = json!("");
        tokens = vec![frame(&chunk(json!({"tool_calls": [first]}), None))];
        for piece in [&args[..args.len() / 2], &args[args.len() / 2..]] {
            tokens.push(frame(&chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}), None)));
        }
    }
    let mut fin = chunk(json!({}), Some(finish_reason));
    if usage_on_finish {
        fin["usage"] = usage(r);
    }
    let mut finish = vec![frame(&fin)];
    if separate_usage {
        finish.push(frame(&json!({"id": r.id, "object": "chat.completion.chunk", "created": r.created, "model": r.model, "system_fingerprint": "fp_mock", "choices": [], "usage": usage(r)})));
    }
    let error_event = frame(&json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}}));
    let s = Script { head, tokens, finish, terminator: vec![Bytes::from_static(b"data: [DONE]\n\n")], error_event };
    sse_response(&rate_headers(9_999), script::body(s, faults, end))
}

pub fn embeddings(body: &Value) -> Response {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect(),
        _ => return error(ErrorKind::BadRequest, vec![]),
    };
    let dims = body.get("dimensions").and_then(Value::as_u64).unwrap_or(8) as usize;
    let model = body.get("model").and_then(Value::as_str).unwrap_or("").split('@').next().unwrap_or("").to_string();
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            tokens += s.split_whitespace().count().max(1);
            let seed = s.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
            let v: Vec<f64> = (0..dims).map(|d| (((seed >> (d % 48)) & 0xff) as f64 / 255.0) - 0.5).collect();
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    let body = json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    json_response(200, &rate_headers(9_999), serde_json::to_vec(&body).unwrap())
}
