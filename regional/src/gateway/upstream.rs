//! One upstream HTTP exchange over reqwest: send, and read a body within a bound. Only
//! transport: what to send, how long to wait and what a failure means come from the
//! driver (`meridian_shared::drive`).

use std::time::{Duration, Instant};

use meridian_shared::drive::transport_error;
use meridian_shared::failover::{ErrorClass, UpstreamError};
use meridian_shared::providers::UpstreamRequest;

/// Largest error body read from a provider.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest provider response body accepted.
pub const MAX_RESPONSE_BODY: usize = 32 * 1024 * 1024;
/// Longest wait for an error body.
pub const ERROR_BODY_WITHIN: Duration = Duration::from_secs(5);

/// Why a read did not produce a body.
pub enum ReadError {
    TimedOut,
    Failed(UpstreamError),
}

/// The error and its causes ("connection refused", "connection reset"); it never holds
/// our key.
pub fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// The connection failed: refused, reset, or the connect timer.
pub fn failed(e: &reqwest::Error) -> UpstreamError {
    transport_error(describe(e), e.is_connect() && e.is_timeout())
}

pub fn header_pairs(h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    h.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string()))).collect()
}

pub fn as_refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Sends the request; resolves when the response headers arrive.
pub async fn send(client: &reqwest::Client, up: UpstreamRequest) -> Result<reqwest::Response, reqwest::Error> {
    let mut rb = client.post(&up.url).body(up.body);
    for (k, v) in &up.headers {
        rb = rb.header(*k, v);
    }
    rb.send().await
}

/// Reads a whole body, at most `max` bytes, until `deadline`.
pub async fn read_bounded(mut resp: reqwest::Response, max: usize, deadline: Instant) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline.into(), resp.chunk()).await {
            Err(_) => return Err(ReadError::TimedOut),
            Ok(Err(e)) => return Err(ReadError::Failed(failed(&e))),
            Ok(Ok(None)) => return Ok(out),
            Ok(Ok(Some(b))) => {
                if out.len() + b.len() > max {
                    return Err(ReadError::Failed(UpstreamError::new(ErrorClass::Transient, None, format!("provider response exceeded {max} bytes"))));
                }
                out.extend_from_slice(&b);
            }
        }
    }
}

pub use crate::clock::unix_ms;
