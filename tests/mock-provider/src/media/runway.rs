//! A Runway-style video API: `POST /v1/text_to_video` → `{"id"}`; `GET /v1/tasks/{id}` →
//! PENDING, then RUNNING with progress, then SUCCEEDED with an output URL (or FAILED);
//! `GET /_mock/media/{id}.mp4` serves the video. Requires `X-Runway-Version`. A task
//! advances by polls, not by time, so tests are deterministic: the first poll sees
//! PENDING, the next `task_polls - 1` RUNNING with rising progress (default 3 polls in
//! all), then SUCCEEDED (or FAILED with `task_fail`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;

use super::{bearer, bytes as files, preflight, Refusal};

pub struct Task {
    polls: u64,
    run_polls: u64,
    fail: bool,
    prompt: String,
    seconds: u32,
}

fn refuse(r: Refusal) -> Response {
    let (status, msg) = match r {
        Refusal::Status(s, _) => (s, "Mock error.".to_string()),
        Refusal::MissingKey | Refusal::InvalidKey => (401, "Invalid API key".into()),
        Refusal::BadRequest(m) => (400, m),
        Refusal::ContentPolicy => (400, "The prompt did not pass moderation.".into()),
    };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(json!({"error": msg}))).into_response()
}

pub async fn submit(State(st): State<Arc<crate::State>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else { return refuse(Refusal::BadRequest("body is not JSON".into())) };
    let (model, prompt) = (v["model"].as_str().unwrap_or("gen4_turbo"), v["promptText"].as_str().unwrap_or_default());
    let f = match preflight(&st, "runway", "/v1/text_to_video", model, prompt, &headers, bearer(&headers)).await {
        Ok(f) => f,
        Err(r) => return refuse(r),
    };
    if headers.get("x-runway-version").is_none() {
        return refuse(Refusal::BadRequest("The X-Runway-Version header is required.".into()));
    }
    if prompt.is_empty() {
        return refuse(Refusal::BadRequest("promptText is required.".into()));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let task = Task { polls: 0, run_polls: f.task_polls.unwrap_or(3).max(1), fail: f.task_fail, prompt: prompt.to_string(), seconds: v["duration"].as_u64().unwrap_or(5) as u32 };
    st.tasks.lock().unwrap().insert(id.clone(), task);
    axum::Json(json!({"id": id})).into_response()
}

pub async fn task(State(st): State<Arc<crate::State>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if bearer(&headers).is_none() {
        return refuse(Refusal::MissingKey);
    }
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let mut tasks = st.tasks.lock().unwrap();
    let Some(t) = tasks.get_mut(&id) else { return (StatusCode::NOT_FOUND, axum::Json(json!({"error": "Task not found."}))).into_response() };
    t.polls += 1;
    let body = if t.polls == 1 && t.run_polls > 1 {
        json!({"id": id, "status": "PENDING", "createdAt": "2026-01-01T00:00:00.000Z"})
    } else if t.polls < t.run_polls {
        json!({"id": id, "status": "RUNNING", "progress": (t.polls as f64 / t.run_polls as f64 * 100.0).round() / 100.0, "createdAt": "2026-01-01T00:00:00.000Z"})
    } else if t.fail {
        json!({"id": id, "status": "FAILED", "failure": "The task failed (mock task_fail).", "failureCode": "INTERNAL", "createdAt": "2026-01-01T00:00:00.000Z"})
    } else {
        json!({"id": id, "status": "SUCCEEDED", "output": [format!("http://{host}/_mock/media/{id}.mp4")], "createdAt": "2026-01-01T00:00:00.000Z"})
    };
    axum::Json(body).into_response()
}

pub async fn download(State(st): State<Arc<crate::State>>, Path(file): Path<String>) -> Response {
    let id = file.trim_end_matches(".mp4");
    let found = st.tasks.lock().unwrap().get(id).map(|t| (t.seconds, t.prompt.clone()));
    match found {
        Some((seconds, prompt)) => ([("content-type", "video/mp4")], files::mp4(seconds, &prompt)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
