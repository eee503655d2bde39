//! OpenAI media: `POST /v1/images/generations` (`b64_json` images; DALL·E without
//! `response_format: b64_json` gets URLs, which the mock does not serve: it always sends
//! base64 as gpt-image models do), `POST /v1/audio/speech` (audio bytes in the asked
//! format), `POST /v1/audio/transcriptions` (multipart upload; json, text or verbose_json).

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use super::{bearer, bytes as files, preflight, Refusal};
use crate::attempts::unix_secs;
use crate::wire::ErrorKind;

fn refuse(r: Refusal) -> Response {
    let (kind, extra) = match r {
        Refusal::Status(s, retry) => (ErrorKind::Status(s), retry.map(|s| vec![("retry-after", s.to_string())]).unwrap_or_default()),
        Refusal::MissingKey => (ErrorKind::MissingKey, vec![]),
        Refusal::InvalidKey => (ErrorKind::InvalidKey, vec![]),
        Refusal::BadRequest(_) => (ErrorKind::BadRequest, vec![]),
        Refusal::ContentPolicy => (ErrorKind::ContentPolicy, vec![]),
    };
    crate::openai::error(kind, extra)
}

pub async fn images(State(st): State<Arc<crate::State>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else { return refuse(Refusal::BadRequest("json".into())) };
    let (model, prompt) = (v["model"].as_str().unwrap_or("dall-e-2"), v["prompt"].as_str().unwrap_or_default());
    if let Err(r) = preflight(&st, "openai", "/v1/images/generations", model, prompt, &headers, bearer(&headers)).await {
        return refuse(r);
    }
    if prompt.is_empty() {
        return refuse(Refusal::BadRequest("prompt".into()));
    }
    let (w, h) = v["size"].as_str().and_then(|s| s.split_once('x')).and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?))).unwrap_or((1024, 1024));
    let n = v["n"].as_u64().unwrap_or(1).clamp(1, 10);
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(files::png(w, h, &format!("{prompt}{i}"))), "revised_prompt": format!("{prompt}, in one colour.")}))
        .collect();
    axum::Json(json!({"created": unix_secs(), "data": data, "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110}})).into_response()
}

pub async fn speech(State(st): State<Arc<crate::State>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else { return refuse(Refusal::BadRequest("json".into())) };
    let (model, input) = (v["model"].as_str().unwrap_or("tts-1"), v["input"].as_str().unwrap_or_default());
    if let Err(r) = preflight(&st, "openai", "/v1/audio/speech", model, input, &headers, bearer(&headers)).await {
        return refuse(r);
    }
    if input.is_empty() || v["voice"].as_str().is_none() {
        return refuse(Refusal::BadRequest("input".into()));
    }
    let seconds = (input.chars().count() as f32 * 0.06).max(0.5);
    match v["response_format"].as_str().unwrap_or("mp3") {
        "wav" => ([("content-type", "audio/wav")], files::wav(seconds, 24_000)).into_response(),
        "mp3" => ([("content-type", "audio/mpeg")], files::mp3(seconds)).into_response(),
        _ => refuse(Refusal::BadRequest("response_format".into())),
    }
}

pub async fn transcriptions(State(st): State<Arc<crate::State>>, headers: HeaderMap, mut form: Multipart) -> Response {
    let (mut model, mut format, mut file) = (String::from("whisper-1"), String::from("json"), None::<(String, usize)>);
    while let Ok(Some(field)) = form.next_field().await {
        match field.name().unwrap_or_default() {
            "model" => model = field.text().await.unwrap_or_default(),
            "response_format" => format = field.text().await.unwrap_or_default(),
            "file" => {
                let name = field.file_name().unwrap_or("audio").to_string();
                file = Some((name, field.bytes().await.map(|b| b.len()).unwrap_or(0)));
            }
            _ => {}
        }
    }
    if let Err(r) = preflight(&st, "openai", "/v1/audio/transcriptions", &model, "", &headers, bearer(&headers)).await {
        return refuse(r);
    }
    let Some((name, n)) = file.filter(|(_, n)| *n > 0) else { return refuse(Refusal::BadRequest("file".into())) };
    let text = format!("Mock transcript of {name} ({n} bytes).");
    match format.as_str() {
        "text" => ([("content-type", "text/plain; charset=utf-8")], text).into_response(),
        "verbose_json" => axum::Json(json!({"task": "transcribe", "language": "english", "duration": 1.0, "text": text, "words": [{"word": "Mock", "start": 0.0, "end": 0.4}]})).into_response(),
        _ => axum::Json(json!({"text": text, "usage": {"type": "duration", "seconds": 1}})).into_response(),
    }
}
