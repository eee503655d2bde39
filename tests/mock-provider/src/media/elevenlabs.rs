//! ElevenLabs: `POST /v1/text-to-speech/{voice_id}?output_format=…` with `xi-api-key` →
//! `audio/mpeg` (or raw PCM for `pcm_*`); errors `{"detail": …}` (422 as a list).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{bytes as files, preflight, Refusal};

fn refuse(r: Refusal) -> Response {
    let (status, detail) = match r {
        Refusal::Status(429, _) => (429, json!({"status": "too_many_concurrent_requests", "message": "Too many concurrent requests."})),
        Refusal::Status(s, _) => (s, json!({"status": "server_error", "message": "Mock error."})),
        Refusal::MissingKey | Refusal::InvalidKey => (401, json!({"status": "invalid_api_key", "message": "Invalid API key"})),
        Refusal::BadRequest(m) => (422, json!([{"loc": ["body", "text"], "msg": m, "type": "value_error"}])),
        Refusal::ContentPolicy => (400, json!({"status": "content_policy_violation", "message": "The text violates the content policy."})),
    };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(json!({"detail": detail}))).into_response()
}

pub async fn speech(State(st): State<Arc<crate::State>>, Path(voice): Path<String>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else { return refuse(Refusal::BadRequest("body is not JSON".into())) };
    let (model, text) = (v["model_id"].as_str().unwrap_or("eleven_multilingual_v2"), v["text"].as_str().unwrap_or_default());
    let key = headers.get("xi-api-key").and_then(|v| v.to_str().ok());
    if let Err(r) = preflight(&st, "elevenlabs", "/v1/text-to-speech", model, text, &headers, key).await {
        return refuse(r);
    }
    if text.is_empty() || voice.is_empty() {
        return refuse(Refusal::BadRequest("field required".into()));
    }
    let seconds = (text.chars().count() as f32 * 0.06).max(0.5);
    match q.get("output_format").map(String::as_str).unwrap_or("mp3_44100_128") {
        f if f.starts_with("pcm_") => {
            let rate = f[4..].parse().unwrap_or(24_000);
            ([("content-type", "application/octet-stream")], files::pcm(seconds, rate)).into_response()
        }
        f if f.starts_with("mp3_") => ([("content-type", "audio/mpeg")], files::mp3(seconds)).into_response(),
        _ => refuse(Refusal::BadRequest("output_format".into())),
    }
}
