//! What all three wire formats share: the request's parsed view, the reply context, and
//! the error kinds each format renders in its own shape.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::content::Ask;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Openai,
    Anthropic,
    Gemini,
}

impl Wire {
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::Openai => "openai",
            Wire::Anthropic => "anthropic",
            Wire::Gemini => "gemini",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Status(u16),
    ContextLength,
    ContentPolicy,
    MissingKey,
    InvalidKey,
    BadRequest,
    /// A final assistant turn the model does not accept (Anthropic, Claude 4.6+).
    PrefillRejected,
}

/// Everything a renderer needs to write one answer.
pub struct Reply {
    pub model: String,
    pub id: String,
    pub created: u64,
    pub tokens: Vec<String>,
    /// Reasoning tokens before the answer (DeepSeek reasoner style).
    pub reasoning: Vec<String>,
    /// Answer with a call to this tool instead of text.
    pub tool: Option<String>,
    pub ask: Ask,
    pub include_usage: bool,
}

impl Reply {
    pub fn completion_tokens(&self) -> u64 {
        (self.tokens.len() + self.reasoning.len()) as u64 + u64::from(self.tool.is_some()) * 4
    }

    pub fn text(&self) -> String {
        self.tokens.concat()
    }
}

pub fn json_response(status: u16, headers: &[(&'static str, String)], body: Vec<u8>) -> Response {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(*k, v);
        }
    }
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), h, Bytes::from(body)).into_response()
}

pub fn sse_response(headers: &[(&'static str, String)], body: axum::body::Body) -> Response {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("text/event-stream; charset=utf-8"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(*k, v);
        }
    }
    (StatusCode::OK, h, body).into_response()
}
