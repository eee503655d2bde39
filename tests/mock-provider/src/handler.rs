//! Request handling shared by the three wire formats: auth check, fault selection,
//! attempt logging, then the format's own renderer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde_json::{json, Value};

use crate::attempts::{unix_secs, Attempt};
use crate::conn::ResetHandle;
use crate::content::{ask, remaining_tokens, Continuing};
use crate::faults::{split_model, Faults};
use crate::wire::{ErrorKind, Reply, Wire};
use crate::{anthropic, gemini, openai};

type AppState = State<Arc<crate::State>>;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn error(wire: Wire, kind: ErrorKind, extra: Vec<(&'static str, String)>) -> Response {
    match wire {
        Wire::Openai => openai::error(kind, extra),
        Wire::Anthropic => anthropic::error(kind, extra),
        Wire::Gemini => gemini::error(kind, extra),
    }
}

/// The key the request carries in its format's place, if any.
fn credential(wire: Wire, h: &HeaderMap, query_key: Option<&str>) -> Option<String> {
    match wire {
        Wire::Openai => header(h, "authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string),
        Wire::Anthropic => header(h, "x-api-key").map(str::to_string),
        Wire::Gemini => header(h, "x-goog-api-key").map(str::to_string).or(query_key.map(str::to_string)),
    }
}

struct Request {
    wire: Wire,
    model_full: String,
    stream: bool,
    turns: Vec<(String, String)>,
    body: Value,
    path: String,
}

/// Every text of `v` that is a string or a list of `{text}` blocks/parts.
fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn system_text(wire: Wire, body: &Value) -> String {
    let parts: Vec<String> = match wire {
        Wire::Openai => body["messages"].as_array().into_iter().flatten().filter(|m| matches!(m["role"].as_str(), Some("system" | "developer"))).flat_map(|m| texts(&m["content"])).collect(),
        Wire::Anthropic => texts(&body["system"]),
        Wire::Gemini => texts(&body["systemInstruction"]["parts"]),
    };
    parts.join("\n")
}

/// Applies the pre-answer faults. `Ok((faults, seq))` means: go on and answer (`seq`
/// is the request's entry in the attempt log).
async fn preflight(st: &crate::State, req: &Request, headers: &HeaderMap, reset: &ResetHandle, query_key: Option<&str>) -> Result<(Faults, u64), Response> {
    let f = match Faults::for_request(&st.faults, &req.model_full, header(headers, "x-mock-fault"), Faults { tokens: Some(st.tokens), ..Default::default() }) {
        Ok(f) => f,
        Err(e) => {
            let mut r = error(req.wire, ErrorKind::Status(400), vec![]);
            *r.body_mut() = axum::body::Body::from(json!({"mock_error": e}).to_string());
            return Err(r);
        }
    };
    let key = credential(req.wire, headers, query_key);
    let (since_first, prior, seq) = st.log.record(Attempt {
        seq: 0,
        at_ms: 0.0,
        wire: req.wire.as_str(),
        path: req.path.clone(),
        model: req.model_full.clone(),
        stream: req.stream,
        last_message: req.turns.last().map(|(_, t)| t.clone()).unwrap_or_default(),
        message_count: req.turns.len(),
        system: system_text(req.wire, &req.body),
        credential: key.as_deref().is_some_and(|k| !k.is_empty()),
        ended: None,
    });
    if f.reset {
        reset.reset();
        return Err(().into_response());
    }
    f.delay().await;
    match key.as_deref() {
        None | Some("") if f.no_auth => {}
        None | Some("") => return Err(error(req.wire, ErrorKind::MissingKey, vec![])),
        Some("invalid") => return Err(error(req.wire, ErrorKind::InvalidKey, vec![])),
        _ => {}
    }
    if req.wire == Wire::Anthropic && header(headers, "anthropic-version").is_none() {
        return Err(error(req.wire, ErrorKind::BadRequest, vec![]));
    }
    // Claude 4.6 and later refuse a final assistant turn; a model declared `prefill`
    // (or the cooperative mock) takes it.
    if req.wire == Wire::Anthropic && ask(&req.turns).continuing == Continuing::Prefill && !f.prefill && !f.cooperative {
        return Err(error(req.wire, ErrorKind::PrefillRejected, vec![]));
    }
    if let Some(status) = f.failure(since_first, prior) {
        let mut extra = Vec::new();
        if let Some(s) = f.retry_after {
            extra.push(("retry-after", s.to_string()));
        }
        if let Some(s) = f.retry_after_date {
            extra.push(("retry-after", httpdate_after(s)));
        }
        return Err(error(req.wire, ErrorKind::Status(status), extra));
    }
    if f.context_length {
        return Err(error(req.wire, ErrorKind::ContextLength, vec![]));
    }
    if f.content_policy && req.wire != Wire::Gemini {
        return Err(error(req.wire, ErrorKind::ContentPolicy, vec![]));
    }
    if let Some(path) = &f.replay {
        let bytes = std::fs::read(path).map_err(|e| error(req.wire, ErrorKind::Status(500), vec![("x-mock-error", e.to_string())]))?;
        let ct = if path.ends_with(".sse") { "text/event-stream; charset=utf-8" } else { "application/json" };
        return Err(([("content-type", ct)], bytes).into_response());
    }
    Ok((f, seq))
}

/// An RFC 7231 date `secs` seconds from now.
fn httpdate_after(secs: u64) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(secs))
}

fn reply(st: &crate::State, req: &Request, f: &Faults, include_usage: bool) -> Reply {
    let (model, _) = split_model(&req.model_full);
    let a = ask(&req.turns);
    let n = f.tokens.unwrap_or(st.tokens);
    let tools_offered = match req.wire {
        Wire::Gemini => req.body.get("tools").is_some(),
        _ => req.body.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty()),
    };
    let tool = if (f.tool_call || tools_offered) && !a.after_tool && req.body.get("tool_choice").and_then(Value::as_str) != Some("none") { first_tool_name(req) } else { None };
    let reasoning = if model.contains("reasoner") { vec!["Thinking".to_string(), " briefly.".to_string()] } else { Vec::new() };
    let carries_on = f.cooperative || (f.prefill && a.continuing == Continuing::Prefill);
    let tokens = remaining_tokens(&a, n, carries_on);
    let id = format!("mock{:x}", rand::thread_rng().gen::<u64>());
    Reply { model: model.to_string(), id, created: unix_secs(), tokens, reasoning, tool, ask: a, include_usage }
}

fn first_tool_name(req: &Request) -> Option<String> {
    let tools = req.body.get("tools")?;
    match req.wire {
        Wire::Openai => tools.pointer("/0/function/name"),
        Wire::Anthropic => tools.pointer("/0/name"),
        Wire::Gemini => tools.pointer("/0/functionDeclarations/0/name"),
    }
    .and_then(Value::as_str)
    .map(str::to_string)
}

fn parse(wire: Wire, body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|_| error(wire, ErrorKind::BadRequest, vec![]))
}

/// Faults, then the answer: streamed or whole (after `ttft` for a whole one).
async fn answer(st: &Arc<crate::State>, req: Request, headers: &HeaderMap, reset: &ResetHandle, include_usage: bool) -> Response {
    let (f, seq) = match preflight(st, &req, headers, reset, None).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let r = reply(st, &req, &f, include_usage);
    let anthropic = req.wire == Wire::Anthropic;
    if req.stream {
        let end = crate::script::End(Some((st.clone(), seq)));
        return if anthropic { anthropic::stream(&r, f, end) } else { openai::stream(&r, f, end) };
    }
    if let Some(d) = f.ttft {
        tokio::time::sleep(d).await;
    }
    if anthropic {
        anthropic::complete(&r)
    } else {
        openai::complete(&r)
    }
}

fn chat_request(wire: Wire, body: Value, path: String, turns: fn(&Value) -> Vec<(String, String)>) -> Request {
    Request {
        wire,
        model_full: body.get("model").and_then(Value::as_str).unwrap_or("").to_string(),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        turns: turns(&body),
        path,
        body,
    }
}

pub async fn openai_chat(State(st): AppState, ConnectInfo(reset): ConnectInfo<ResetHandle>, headers: HeaderMap, uri: axum::http::Uri, body: Bytes) -> Response {
    let body = match parse(Wire::Openai, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let req = chat_request(Wire::Openai, body, uri.path().to_string(), openai::turns);
    answer(&st, req, &headers, &reset, include_usage).await
}

pub async fn anthropic_messages(State(st): AppState, ConnectInfo(reset): ConnectInfo<ResetHandle>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match parse(Wire::Anthropic, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        let mut r = anthropic::error(ErrorKind::Status(400), vec![]);
        *r.body_mut() = axum::body::Body::from(r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"},"request_id":"req_mock"}"#);
        return r;
    }
    let req = chat_request(Wire::Anthropic, body, "/v1/messages".into(), anthropic::turns);
    answer(&st, req, &headers, &reset, true).await
}

#[derive(serde::Deserialize)]
pub struct GeminiQuery {
    alt: Option<String>,
    key: Option<String>,
}

pub async fn gemini(State(st): AppState, ConnectInfo(reset): ConnectInfo<ResetHandle>, Path(model_action): Path<String>, Query(q): Query<GeminiQuery>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((model, action)) = model_action.rsplit_once(':') else {
        return gemini::error(ErrorKind::Status(404), vec![]);
    };
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return gemini::error(ErrorKind::Status(404), vec![]),
    };
    let body = match parse(Wire::Gemini, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req = Request { wire: Wire::Gemini, model_full: model.to_string(), stream, turns: gemini::turns(&body), path: format!("/v1beta/models/{model_action}"), body };
    let (f, seq) = match preflight(&st, &req, &headers, &reset, q.key.as_deref()).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let r = reply(&st, &req, &f, true);
    if f.content_policy {
        return gemini::blocked(&r);
    }
    if stream && q.alt.as_deref() == Some("sse") {
        gemini::stream(&r, f, crate::script::End(Some((st.clone(), seq))))
    } else {
        if let Some(d) = f.ttft {
            tokio::time::sleep(d).await;
        }
        gemini::complete(&r)
    }
}

pub async fn openai_embeddings(State(st): AppState, ConnectInfo(reset): ConnectInfo<ResetHandle>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match parse(Wire::Openai, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req = Request { wire: Wire::Openai, model_full: body.get("model").and_then(Value::as_str).unwrap_or("").to_string(), stream: false, turns: Vec::new(), path: "/v1/embeddings".into(), body };
    if let Err(r) = preflight(&st, &req, &headers, &reset, None).await {
        return r;
    }
    openai::embeddings(&req.body)
}

pub async fn models() -> Json<Value> {
    let ids = ["gpt-4o", "gpt-4o-mini", "claude-haiku-4-5", "gemini-2.0-flash", "deepseek-chat", "deepseek-reasoner", "mistral-small-latest"];
    let data: Vec<Value> = ids.iter().map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "meridian-mock"})).collect();
    Json(json!({"object": "list", "data": data}))
}

#[derive(serde::Deserialize)]
pub struct AttemptQuery {
    model: Option<String>,
}

pub async fn list_attempts(State(st): AppState, Query(q): Query<AttemptQuery>) -> Json<Value> {
    Json(json!({"attempts": st.log.list(q.model.as_deref())}))
}

pub async fn jwks(State(st): AppState) -> Response {
    match st.jwks.as_ref().map(std::fs::read) {
        Some(Ok(bytes)) => ([("content-type", "application/json")], bytes).into_response(),
        _ => (axum::http::StatusCode::NOT_FOUND, "no JWKS configured").into_response(),
    }
}

pub async fn clear_attempts(State(st): AppState) -> &'static str {
    st.log.clear();
    "cleared"
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_date_is_well_formed() {
        let s = super::httpdate_after(5);
        assert!(s.ends_with(" GMT") && s.len() == 29, "{s}");
    }
}
