//! Media endpoints in each provider's wire format, with real files (`bytes`) and the
//! same fault injection as text (`model@status=503`, `x-mock-fault`, the faults file):
//! OpenAI images / speech / transcriptions, Stability v1 text-to-image, ElevenLabs
//! text-to-speech, and a Runway-style video task API (submit, poll, download).
//! Video tasks end after `task_polls` polls (default 3) and fail with `task_fail`.

pub mod bytes;
mod elevenlabs;
mod openai;
mod runway;
mod stability;

pub use elevenlabs::speech as elevenlabs_speech;
pub use openai::{images as openai_images, speech as openai_speech, transcriptions as openai_transcriptions};
pub use runway::Task as VideoTask;
pub use runway::{download as runway_download, submit as runway_submit, task as runway_task};
pub use stability::text_to_image as stability_text_to_image;

use axum::http::HeaderMap;

use crate::attempts::Attempt;
use crate::faults::Faults;

/// What went wrong before answering, for the provider to render in its own shape.
pub enum Refusal {
    Status(u16, Option<u64>),
    MissingKey,
    InvalidKey,
    BadRequest(String),
    ContentPolicy,
}

/// Parses the faults for `model_full`, logs the attempt, then applies latency, hang,
/// credentials and failure status. `Ok` means: answer.
pub async fn preflight(st: &crate::State, wire: &'static str, path: &str, model_full: &str, prompt: &str, headers: &HeaderMap, key: Option<&str>) -> Result<Faults, Refusal> {
    let f = Faults::for_request(&st.faults, model_full, headers.get("x-mock-fault").and_then(|v| v.to_str().ok()), Faults::default()).map_err(Refusal::BadRequest)?;
    let (since_first, prior, _) = st.log.record(Attempt {
        seq: 0,
        at_ms: 0.0,
        wire,
        path: path.to_string(),
        model: model_full.to_string(),
        stream: false,
        last_message: prompt.to_string(),
        message_count: 1,
        system: String::new(),
        credential: key.is_some_and(|k| !k.is_empty()),
        ended: None,
    });
    f.delay().await;
    match key {
        None | Some("") => return Err(Refusal::MissingKey),
        Some("invalid") => return Err(Refusal::InvalidKey),
        _ => {}
    }
    if let Some(status) = f.failure(since_first, prior) {
        return Err(Refusal::Status(status, f.retry_after));
    }
    if f.content_policy {
        return Err(Refusal::ContentPolicy);
    }
    Ok(f)
}

pub fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}
