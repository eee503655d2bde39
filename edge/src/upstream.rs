//! One provider attempt over `fetch`, with the first-byte timer and the remaining total
//! budget; failures come back classified by the core.

use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use meridian_shared::failover::{ErrorClass, TimeoutKind, UpstreamError};
use meridian_shared::providers::{classify_http_error, ProviderKind, UpstreamRequest};
use worker::{AbortController, ByteStream, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::clock::now_ms;

/// Largest provider body read whole (non-stream answers, error bodies).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

pub fn timeout_error(kind: TimeoutKind, ms: u64) -> UpstreamError {
    UpstreamError::new(ErrorClass::Timeout(kind), None, format!("no {} within {ms} ms", kind.as_str().replace('_', " ")))
}

/// Milliseconds left before `deadline_ms`, at least 1.
pub fn remaining(deadline_ms: u64) -> u64 {
    deadline_ms.saturating_sub(now_ms()).max(1)
}

fn request(up: &UpstreamRequest) -> worker::Result<Request> {
    let h = Headers::new();
    for (k, v) in &up.headers {
        h.set(k, v)?;
    }
    let body = js_sys::Uint8Array::from(&up.body[..]);
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(h).with_body(Some(body.into()));
    Request::new_with_init(&up.url, &init)
}

pub fn header_pairs(r: &Response) -> Vec<(String, String)> {
    r.headers().entries().collect()
}

/// Sends and waits for headers. `Ok` is always a 2xx whose body is still to be read.
pub async fn send(up: UpstreamRequest, kind: ProviderKind, first_byte_ms: u64, deadline_ms: u64) -> Result<Response, UpstreamError> {
    let req = request(&up).map_err(|e| UpstreamError::new(ErrorClass::BadRequest, None, format!("could not build the provider request: {e}")))?;
    let ctrl = AbortController::default();
    let signal = ctrl.signal();
    let wait = first_byte_ms.min(remaining(deadline_ms));
    let fetch = Fetch::Request(req);
    let sent = Box::pin(fetch.send_with_signal(&signal));
    let mut resp = match select(sent, Delay::from(Duration::from_millis(wait))).await {
        Either::Left((Ok(r), _)) => r,
        Either::Left((Err(e), _)) => return Err(UpstreamError::new(ErrorClass::Transient, None, format!("connection failed: {e}"))),
        Either::Right(_) => {
            ctrl.abort();
            return Err(timeout_error(if wait < first_byte_ms { TimeoutKind::Total } else { TimeoutKind::FirstByte }, wait));
        }
    };
    let status = resp.status_code();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let headers = header_pairs(&resp);
    let body = read_body(&mut resp, remaining(deadline_ms).min(5_000)).await.unwrap_or_default();
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Err(classify_http_error(kind, status, &h, &body, now_ms()))
}

/// The next chunk of a body stream within `ms`: `Ok(None)` at the end, `Err(None)` on
/// timeout, `Err(Some(msg))` when the connection failed.
pub async fn next_chunk(stream: &mut ByteStream, ms: u64) -> Result<Option<Vec<u8>>, Option<String>> {
    match select(stream.next(), Delay::from(Duration::from_millis(ms))).await {
        Either::Left((Some(Ok(b)), _)) => Ok(Some(b)),
        Either::Left((Some(Err(e)), _)) => Err(Some(e.to_string())),
        Either::Left((None, _)) => Ok(None),
        Either::Right(_) => Err(None),
    }
}

/// Reads a whole body within `ms`, at most [`MAX_BODY`] bytes.
pub async fn read_body(resp: &mut Response, ms: u64) -> Result<Vec<u8>, UpstreamError> {
    let deadline = now_ms() + ms;
    let mut stream = resp.stream().map_err(|e| UpstreamError::new(ErrorClass::Transient, None, e.to_string()))?;
    let mut out = Vec::new();
    loop {
        match next_chunk(&mut stream, remaining(deadline)).await {
            Ok(Some(b)) => {
                if out.len() + b.len() > MAX_BODY {
                    return Err(UpstreamError::new(ErrorClass::Transient, None, format!("provider response exceeded {MAX_BODY} bytes")));
                }
                out.extend_from_slice(&b);
            }
            Ok(None) => return Ok(out),
            Err(None) => return Err(timeout_error(TimeoutKind::FirstToken, ms)),
            Err(Some(e)) => return Err(UpstreamError::new(ErrorClass::Transient, None, format!("connection failed: {e}"))),
        }
    }
}
