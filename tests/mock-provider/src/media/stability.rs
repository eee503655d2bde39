//! Stability v1: `POST /v1/generation/{engine}/text-to-image` → `{"artifacts": [...]}`
//! (`Accept: application/json`), errors `{id, name, message}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use super::{bearer, bytes as files, preflight, Refusal};

fn refuse(r: Refusal) -> Response {
    let (status, name, message) = match r {
        Refusal::Status(429, _) => (429, "rate_limit_exceeded", "You have exceeded the rate limit.".to_string()),
        Refusal::Status(s, _) if s >= 500 => (s, "server_error", "An unexpected server error occurred, please try again.".to_string()),
        Refusal::Status(s, _) => (s, "bad_request", "Mock error.".to_string()),
        Refusal::MissingKey => (401, "unauthorized", "missing authorization header".into()),
        Refusal::InvalidKey => (401, "unauthorized", "Incorrect API key provided".into()),
        Refusal::BadRequest(m) => (400, "invalid_body", m),
        Refusal::ContentPolicy => (400, "invalid_prompts", "One or more prompts contained filtered words.".into()),
    };
    let body = json!({"id": uuid::Uuid::new_v4().to_string(), "name": name, "message": message});
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

pub async fn text_to_image(State(st): State<Arc<crate::State>>, Path(engine): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else { return refuse(Refusal::BadRequest("body is not JSON".into())) };
    let prompt = v["text_prompts"][0]["text"].as_str().unwrap_or_default();
    if let Err(r) = preflight(&st, "stability", "/v1/generation/text-to-image", &engine, prompt, &headers, bearer(&headers)).await {
        return refuse(r);
    }
    if prompt.is_empty() {
        return refuse(Refusal::BadRequest("text_prompts: at least one prompt is required".into()));
    }
    let (w, h) = (v["width"].as_u64().unwrap_or(512) as u32, v["height"].as_u64().unwrap_or(512) as u32);
    let artifacts: Vec<Value> = (0..v["samples"].as_u64().unwrap_or(1).clamp(1, 10))
        .map(|i| json!({"base64": base64::engine::general_purpose::STANDARD.encode(files::png(w, h, &format!("{prompt}{i}"))), "finishReason": "SUCCESS", "seed": 1000 + i}))
        .collect();
    axum::Json(json!({"artifacts": artifacts})).into_response()
}
