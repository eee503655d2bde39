//! One provider exchange over `fetch`: send (aborted when the wait the driver gave runs
//! out), read a body chunk within a bound, read a whole body. Only transport: what to
//! send, how long to wait and what a failure means come from `meridian_shared::drive`.

use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use meridian_shared::providers::UpstreamRequest;
use worker::{AbortController, ByteStream, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::clock::now_ms;

/// Largest provider body read whole (non-stream answers).
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// Largest error body read from a provider, and the longest wait for it.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
pub const ERROR_BODY_WITHIN_MS: u64 = 5_000;

/// Why no response (or no body) came.
pub enum Failure {
    TimedOut,
    Failed(String),
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

pub fn as_refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Sends and waits at most `within_ms` for the response headers.
pub async fn send(up: UpstreamRequest, within_ms: u64) -> Result<Response, Failure> {
    let req = request(&up).map_err(|e| Failure::Failed(format!("could not build the provider request: {e}")))?;
    let ctrl = AbortController::default();
    let signal = ctrl.signal();
    let fetch = Fetch::Request(req);
    let sent = Box::pin(fetch.send_with_signal(&signal));
    let outcome = match select(sent, Delay::from(Duration::from_millis(within_ms))).await {
        Either::Left((Ok(r), _)) => Ok(r),
        Either::Left((Err(e), _)) => Err(Failure::Failed(format!("connection failed: {e}"))),
        Either::Right(_) => {
            ctrl.abort();
            Err(Failure::TimedOut)
        }
    };
    outcome
}

/// The next chunk of a body stream within `ms`: `Ok(None)` at the end.
pub async fn next_chunk(stream: &mut ByteStream, ms: u64) -> Result<Option<Vec<u8>>, Failure> {
    match select(stream.next(), Delay::from(Duration::from_millis(ms))).await {
        Either::Left((Some(Ok(b)), _)) => Ok(Some(b)),
        Either::Left((Some(Err(e)), _)) => Err(Failure::Failed(e.to_string())),
        Either::Left((None, _)) => Ok(None),
        Either::Right(_) => Err(Failure::TimedOut),
    }
}

/// Reads a whole body, at most `max` bytes, until `deadline_ms`.
pub async fn read_body(resp: &mut Response, max: usize, deadline_ms: u64) -> Result<Vec<u8>, Failure> {
    let mut stream = resp.stream().map_err(|e| Failure::Failed(e.to_string()))?;
    let mut out = Vec::new();
    loop {
        match next_chunk(&mut stream, deadline_ms.saturating_sub(now_ms()).max(1)).await? {
            Some(b) => {
                if out.len() + b.len() > max {
                    return Err(Failure::Failed(format!("provider response exceeded {max} bytes")));
                }
                out.extend_from_slice(&b);
            }
            None => return Ok(out),
        }
    }
}
