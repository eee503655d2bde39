//! Provider adapters. Each adapter is three pure functions of data:
//!
//! 1. [`build_chat`]: unified request + deployment target → [`UpstreamRequest`];
//! 2. [`parse_chat`]: complete upstream response → [`ChatResponse`] or classified [`UpstreamError`];
//! 3. [`StreamDecoder`]: feed byte slices, get unified [`StreamEvent`]s.
//!
//! The set of providers is closed ([`ProviderKind`]); OpenAI-compatible servers
//! (DeepSeek, Mistral, vLLM, Ollama, Groq, ...) are flavours of one adapter that
//! differ only in data ([`openai_compat::Flavour`]).

pub mod anthropic;
mod classify;
pub mod gemini;
mod http;
pub mod openai_compat;
pub mod prefill;
pub mod sse;

use serde::{Deserialize, Serialize};

use crate::api::{ChatChunk, ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse};
pub use crate::failover::{ErrorClass, UpstreamError};
pub use classify::{classify_http_error, parse_retry_after};
pub use http::{Target, UpstreamRequest};

/// Every provider Meridian can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Gemini,
    Deepseek,
    Mistral,
    Vllm,
    Ollama,
    /// Any other server that speaks OpenAI's chat completions API.
    OpenaiCompatible,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Deepseek => "deepseek",
            ProviderKind::Mistral => "mistral",
            ProviderKind::Vllm => "vllm",
            ProviderKind::Ollama => "ollama",
            ProviderKind::OpenaiCompatible => "openai_compatible",
        }
    }

    /// The wire family this provider speaks.
    pub fn wire(self) -> Wire {
        match self {
            ProviderKind::Anthropic => Wire::Anthropic,
            ProviderKind::Gemini => Wire::Gemini,
            other => Wire::OpenaiCompatible(openai_compat::Flavour::of(other)),
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self.wire() {
            Wire::Anthropic => "https://api.anthropic.com",
            Wire::Gemini => "https://generativelanguage.googleapis.com/v1beta",
            Wire::OpenaiCompatible(f) => f.default_base_url,
        }
    }

    /// Whether the provider refuses requests without an API key. Self-hosted servers
    /// (vLLM, Ollama, other OpenAI-compatible ones) may run without one.
    pub fn needs_key(self) -> bool {
        !matches!(self, ProviderKind::Vllm | ProviderKind::Ollama | ProviderKind::OpenaiCompatible)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenaiCompatible(openai_compat::Flavour),
    Anthropic,
    Gemini,
}

/// One unified event out of a provider stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A chunk in OpenAI's shape. `usage`, when present, is the provider's final count.
    Chunk(ChatChunk),
    /// The provider said the answer is complete (`[DONE]`, `message_stop`, or a Gemini
    /// finish reason followed by a clean close).
    Done,
    /// The provider reported an error inside the stream.
    Error(UpstreamError),
}

/// Builds the upstream HTTP request for a chat completion.
pub fn build_chat(kind: ProviderKind, target: Target<'_>, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest, crate::api::GatewayError> {
    match kind.wire() {
        Wire::OpenaiCompatible(f) => Ok(openai_compat::build_chat(f, target, req, stream)),
        Wire::Anthropic => anthropic::build_chat(target, req, stream),
        Wire::Gemini => gemini::build_chat(target, req, stream),
    }
}

/// Parses a complete upstream response. `now_ms` (Unix milliseconds) resolves
/// HTTP-date `Retry-After` values and stamps providers that send no timestamp.
pub fn parse_chat(kind: ProviderKind, status: u16, headers: &[(&str, &str)], body: &[u8], now_ms: u64) -> Result<ChatResponse, UpstreamError> {
    if !(200..300).contains(&status) {
        return Err(classify_http_error(kind, status, headers, body, now_ms));
    }
    match kind.wire() {
        Wire::OpenaiCompatible(f) => openai_compat::parse_chat(f, body),
        Wire::Anthropic => anthropic::parse_chat(body, now_ms / 1000),
        Wire::Gemini => gemini::parse_chat(body, now_ms / 1000),
    }
}

/// Builds an embeddings request, for providers that offer one through this API.
pub fn build_embeddings(kind: ProviderKind, target: Target<'_>, req: &EmbeddingsRequest) -> Result<UpstreamRequest, crate::api::GatewayError> {
    match kind.wire() {
        Wire::OpenaiCompatible(f) => Ok(openai_compat::build_embeddings(f, target, req)),
        _ => Err(crate::api::GatewayError::invalid_param(
            format!("provider {} does not serve /v1/embeddings through Meridian", kind.as_str()),
            "model",
        )),
    }
}

pub fn parse_embeddings(kind: ProviderKind, status: u16, headers: &[(&str, &str)], body: &[u8], now_ms: u64) -> Result<EmbeddingsResponse, UpstreamError> {
    if !(200..300).contains(&status) {
        return Err(classify_http_error(kind, status, headers, body, now_ms));
    }
    serde_json::from_slice(body).map_err(|e| UpstreamError::new(ErrorClass::Transient, Some(status), format!("malformed embeddings response: {e}")))
}

/// Incremental stream decoder for one upstream response.
#[derive(Debug)]
pub enum StreamDecoder {
    OpenaiCompatible(openai_compat::ChunkDecoder),
    Anthropic(anthropic::EventDecoder),
    Gemini(gemini::ChunkDecoder),
}

impl StreamDecoder {
    /// `id` and `created` stamp chunks for providers whose streams carry none.
    pub fn new(kind: ProviderKind, id: &str, created: u64) -> Self {
        match kind.wire() {
            Wire::OpenaiCompatible(f) => StreamDecoder::OpenaiCompatible(openai_compat::ChunkDecoder::new(f)),
            Wire::Anthropic => StreamDecoder::Anthropic(anthropic::EventDecoder::new(created)),
            Wire::Gemini => StreamDecoder::Gemini(gemini::ChunkDecoder::new(id, created)),
        }
    }

    /// Feeds bytes as they arrive. A malformed frame is returned as an error of class
    /// [`ErrorClass::StreamBroken`] with `tokens_sent: 0`; the host fills in the count.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        match self {
            StreamDecoder::OpenaiCompatible(d) => d.feed(bytes, out),
            StreamDecoder::Anthropic(d) => d.feed(bytes, out),
            StreamDecoder::Gemini(d) => d.feed(bytes, out),
        }
    }

    /// Call at end of body. Gemini has no terminator: a clean close after a finish
    /// reason yields [`StreamEvent::Done`] here.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if let StreamDecoder::Gemini(d) = self {
            d.finish(out)
        }
    }
}

pub(crate) fn malformed(what: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::new(ErrorClass::StreamBroken { tokens_sent: 0 }, None, format!("malformed stream chunk from provider: {what}"))
}

pub(crate) fn sse_error(e: sse::SseError) -> UpstreamError {
    malformed(e)
}
