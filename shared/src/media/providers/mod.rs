//! Media providers: a closed set, each three pure steps like the chat adapters — build the
//! upstream call for a [`MediaRequest`], parse the answer into result bytes (or, for an
//! asynchronous provider, a task to poll), classify failures for failover. Wire formats
//! follow the providers' documentation and `tests/fixtures/providers/`.

mod elevenlabs;
mod errors;
mod multipart;
mod openai;
mod runway;
mod stability;

use serde::{Deserialize, Serialize};

use super::{MediaKind, MediaRequest};
use crate::failover::UpstreamError;
pub use crate::providers::UpstreamRequest;
pub use errors::classify;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaProviderKind {
    /// Images (DALL·E 3, gpt-image), speech (TTS), transcription (Whisper).
    Openai,
    /// Images (Stable Diffusion, v1 REST).
    Stability,
    /// Speech.
    Elevenlabs,
    /// Video, asynchronous: submit a task, poll it, download the output.
    Runway,
}

impl MediaProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaProviderKind::Openai => "openai",
            MediaProviderKind::Stability => "stability",
            MediaProviderKind::Elevenlabs => "elevenlabs",
            MediaProviderKind::Runway => "runway",
        }
    }

    pub fn makes(self, kind: MediaKind) -> bool {
        matches!(
            (self, kind),
            (MediaProviderKind::Openai, MediaKind::Image | MediaKind::Speech | MediaKind::Transcription)
                | (MediaProviderKind::Stability, MediaKind::Image)
                | (MediaProviderKind::Elevenlabs, MediaKind::Speech)
                | (MediaProviderKind::Runway, MediaKind::Video)
        )
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            MediaProviderKind::Openai => "https://api.openai.com/v1",
            MediaProviderKind::Stability => "https://api.stability.ai",
            MediaProviderKind::Elevenlabs => "https://api.elevenlabs.io",
            MediaProviderKind::Runway => "https://api.dev.runwayml.com",
        }
    }
}

/// One deployment, resolved by the host.
#[derive(Clone, Copy)]
pub struct MediaTarget<'a> {
    pub base_url: &'a str,
    pub api_key: &'a str,
    pub model: &'a str,
    /// A fixed provider voice id (ElevenLabs), else the request's voice.
    pub voice: Option<&'a str>,
}

/// One produced file.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// File extension for the object key.
    pub ext: &'static str,
}

/// What a provider's first answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Done(Vec<Output>),
    /// An asynchronous provider accepted a task: poll it with [`poll`].
    Task(String),
}

/// A polled task's state.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskState {
    Pending {
        progress: Option<f32>,
    },
    /// Download these with [`download`].
    Succeeded {
        urls: Vec<String>,
    },
    Failed {
        reason: String,
    },
}

/// The upstream call for `req`; `upload` is a transcription's audio.
pub fn build(kind: MediaProviderKind, t: MediaTarget<'_>, req: &MediaRequest, upload: Option<&[u8]>) -> UpstreamRequest {
    match kind {
        MediaProviderKind::Openai => openai::build(t, req, upload),
        MediaProviderKind::Stability => stability::build(t, req),
        MediaProviderKind::Elevenlabs => elevenlabs::build(t, req),
        MediaProviderKind::Runway => runway::build(t, req),
    }
}

/// A complete answer: `content_type` is the response's header.
pub fn parse(kind: MediaProviderKind, req: &MediaRequest, status: u16, content_type: &str, retry_after: Option<&str>, body: &[u8]) -> Result<Answer, UpstreamError> {
    if !(200..300).contains(&status) {
        return Err(classify(kind, status, retry_after, body));
    }
    match kind {
        MediaProviderKind::Openai => openai::parse(req, content_type, body),
        MediaProviderKind::Stability => stability::parse(body),
        MediaProviderKind::Elevenlabs => elevenlabs::parse(req, content_type, body),
        MediaProviderKind::Runway => runway::parse(body),
    }
}

/// Polling an asynchronous task.
pub fn poll(kind: MediaProviderKind, t: MediaTarget<'_>, task: &str) -> Option<UpstreamRequest> {
    match kind {
        MediaProviderKind::Runway => Some(runway::poll(t, task)),
        _ => None,
    }
}

pub fn parse_poll(kind: MediaProviderKind, status: u16, retry_after: Option<&str>, body: &[u8]) -> Result<TaskState, UpstreamError> {
    if !(200..300).contains(&status) {
        return Err(classify(kind, status, retry_after, body));
    }
    runway::parse_poll(body)
}

/// Fetching a finished task's output (a provider URL; no credentials are sent).
pub fn download(url: &str) -> UpstreamRequest {
    UpstreamRequest { method: "GET", url: url.to_string(), headers: Vec::new(), body: Vec::new() }
}

fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

fn bad_answer(message: impl Into<String>) -> UpstreamError {
    UpstreamError::new(crate::failover::ErrorClass::Transient, None, message)
}
