//! One upstream HTTP attempt with its phase timers: connect (client), first byte
//! (headers), and the remaining total budget. Failures come back classified.

use std::time::{Duration, Instant};

use meridian_shared::failover::{ErrorClass, TimeoutKind, UpstreamError};
use meridian_shared::providers::{classify_http_error, ProviderKind, UpstreamRequest};

/// Largest error body read from a provider.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Milliseconds left before `deadline`, at least 1.
pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
}

pub fn timeout_error(kind: TimeoutKind, after: Duration) -> UpstreamError {
    UpstreamError::new(ErrorClass::Timeout(kind), None, format!("no {} within {} ms", kind.as_str().replace('_', " "), after.as_millis()))
}

fn transport_error(e: &reqwest::Error) -> UpstreamError {
    let class = if e.is_connect() && e.is_timeout() { ErrorClass::Timeout(TimeoutKind::Connect) } else { ErrorClass::Transient };
    // The chain says "connection refused" / "connection reset"; it never holds our key.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    UpstreamError::new(class, None, msg)
}

pub fn header_pairs(h: &reqwest::header::HeaderMap) -> Vec<(&str, &str)> {
    h.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))).collect()
}

/// Sends the request and waits for response headers. A non-2xx answer is read (bounded)
/// and classified, so `Ok` always means a 2xx response whose body is still to be read.
pub async fn send(
    client: &reqwest::Client,
    kind: ProviderKind,
    up: UpstreamRequest,
    first_byte: Duration,
    deadline: Instant,
    now_unix_ms: u64,
) -> Result<reqwest::Response, UpstreamError> {
    let mut rb = client.post(&up.url).body(up.body);
    for (k, v) in &up.headers {
        rb = rb.header(*k, v);
    }
    let wait = first_byte.min(remaining(deadline));
    let resp = match tokio::time::timeout(wait, rb.send()).await {
        Err(_) => return Err(timeout_error(if wait < first_byte { TimeoutKind::Total } else { TimeoutKind::FirstByte }, wait)),
        Ok(Err(e)) => return Err(transport_error(&e)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let headers: Vec<(String, String)> = header_pairs(resp.headers()).into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let body = read_bounded(resp, MAX_ERROR_BODY, remaining(deadline).min(Duration::from_secs(5))).await.unwrap_or_default();
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Err(classify_http_error(kind, status, &h, &body, now_unix_ms))
}

/// Reads a whole body, at most `max` bytes, within `within`.
pub async fn read_bounded(mut resp: reqwest::Response, max: usize, within: Duration) -> Result<Vec<u8>, UpstreamError> {
    let started = Instant::now();
    let mut out = Vec::new();
    loop {
        let left = within.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, resp.chunk()).await {
            Err(_) => return Err(timeout_error(TimeoutKind::FirstToken, within)),
            Ok(Err(e)) => return Err(transport_error(&e)),
            Ok(Ok(None)) => return Ok(out),
            Ok(Ok(Some(b))) => {
                if out.len() + b.len() > max {
                    return Err(UpstreamError::new(ErrorClass::Transient, None, format!("provider response exceeded {max} bytes")));
                }
                out.extend_from_slice(&b);
            }
        }
    }
}

pub use meridian_regional::clock::unix_ms;
