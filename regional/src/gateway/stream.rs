//! Steps 9–10 for streaming requests, driven through the core's [`StreamRelay`] and
//! [`AttemptStream`]: failover before the first token is invisible to the client; after
//! it, a broken stream is continued on a fallback or ended with an in-band error event.
//! This module only does the I/O: reqwest reads, tokio timers, the client channel.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meridian_shared::api::ChatRequest;
use meridian_shared::auth::{Principal, Region};
use meridian_shared::failover::{Action, AttemptMode, Engine, ErrorClass, Outcome, UpstreamError};
use meridian_shared::providers;
use meridian_shared::relay::{continuation, AttemptStream, Step, StreamRelay};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::attempt::{self, remaining, unix_ms};
use meridian_shared::api::GatewayError;

use super::error::ApiError;
use super::headers::Trace;
use crate::state::SharedState;
use crate::usage;

/// Frames buffered between the provider and a slow client before backpressure.
const CHANNEL_FRAMES: usize = 16;

type Commit = Result<Vec<(&'static str, String)>, ApiError>;

/// Why an attempt ended without a complete answer.
enum Stop {
    Failed(UpstreamError),
    ClientGone,
}

/// The I/O around the core's relay: the client channel and the pending commit.
struct Client {
    tx: mpsc::Sender<Bytes>,
    commit: Option<oneshot::Sender<Commit>>,
    frames: Vec<Vec<u8>>,
}

impl Client {
    /// Sends the frames the relay produced; commits the response on the first ones.
    async fn flush(&mut self, relay: &StreamRelay, trace: &Trace) -> Result<(), Stop> {
        if relay.committed() {
            if let Some(c) = self.commit.take() {
                let _ = c.send(Ok(trace.headers()));
            }
        }
        for f in self.frames.drain(..) {
            self.tx.send(Bytes::from(f)).await.map_err(|_| Stop::ClientGone)?;
        }
        Ok(())
    }
}

/// Reads one upstream stream to its end. `Ok` means the provider finished the answer.
#[allow(clippy::too_many_arguments)]
async fn attempt(st: &SharedState, relay: &mut StreamRelay, client: &mut Client, trace: &Trace, req: &ChatRequest, d: usize, route: &str, mode: AttemptMode, deadline: Instant) -> Result<(), Stop> {
    let dep = &st.router.deployments[d];
    let t = st.route(route).timeouts;
    let body = match mode {
        AttemptMode::Fresh => req.clone(),
        AttemptMode::Continue => continuation(req, relay.text_sent(), dep.kind),
    };
    let up = providers::build_chat(dep.kind, dep.target(st.config.limits.default_max_tokens), &body, true)
        .map_err(|e| Stop::Failed(UpstreamError::new(ErrorClass::BadRequest, None, e.to_string())))?;
    let mut resp = attempt::send(st.client(route), dep.kind, up, Duration::from_millis(t.first_byte_ms), deadline, unix_ms()).await.map_err(Stop::Failed)?;
    let mut a = AttemptStream::new(dep.kind, "", unix_ms() / 1000, mode == AttemptMode::Continue);
    loop {
        let limit = match a.timer() {
            meridian_shared::failover::TimeoutKind::Idle => t.idle_ms,
            _ => t.first_token_ms,
        };
        let wait = Duration::from_millis(limit).min(remaining(deadline));
        let step = match tokio::time::timeout(wait, resp.chunk()).await {
            Err(_) => a.on_timeout(relay, wait.as_millis() as u64),
            Ok(Err(e)) => a.on_transport_error(relay, &e.to_string()),
            Ok(Ok(None)) => a.on_eof(relay, &mut client.frames),
            Ok(Ok(Some(bytes))) => a.on_bytes(&bytes, relay, &mut client.frames),
        };
        client.flush(relay, trace).await?;
        match step {
            Step::Continue => {}
            Step::Complete => return Ok(()),
            Step::Failed(e) => return Err(Stop::Failed(e)),
        }
    }
}

/// One streamed request: what to send, for whom, where it may go, and whether to cache
/// the finished answer.
pub struct Job {
    pub req: ChatRequest,
    pub model_name: String,
    pub principal: Principal,
    pub region: Option<Region>,
    pub pending: Option<super::semantic::Pending>,
}

async fn drive(st: SharedState, job: Job, mut trace: Trace, mut client: Client) {
    let Job { req, model_name, principal, region, pending } = job;
    let Some(model) = st.router.models.get(&model_name) else { return };
    let route = st.route(&model.route);
    let deadline = Instant::now() + Duration::from_millis(route.timeouts.total_ms);
    let mut relay = StreamRelay::new(format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()), unix_ms() / 1000, req.wants_stream_usage());
    if pending.is_some() {
        relay.keep_transcript();
    }
    let mut engine = Engine::new(st.router.plan(model, region, st.now_ms(), rand::random(), rand::random()), route.policy(), st.now_ms());
    let mut action = engine.start();
    let answered_by = loop {
        match action {
            Action::Attempt { deployment: d, after_ms, mode, attempt: n } => {
                if after_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    trace.upstream_ms += after_ms as f64;
                }
                let dep = &st.router.deployments[d];
                trace.attempts = n;
                trace.deployment = Some(dep.name.clone());
                trace.provider = Some(dep.provider_name.clone());
                if n > 1 {
                    metrics::counter!("meridian_retries_total", "route" => model.route.clone()).increment(1);
                }
                let span = tracing::info_span!("attempt", attempt = n, deployment = %dep.name, provider = dep.kind.as_str(), continuation = mode == AttemptMode::Continue);
                let t0 = Instant::now();
                let result = if st.router.acquire(d, st.now_ms()) {
                    attempt(&st, &mut relay, &mut client, &trace, &req, d, &model.route, mode, deadline).instrument(span.clone()).await
                } else {
                    Err(Stop::Failed(UpstreamError::new(ErrorClass::Transient, None, format!("circuit breaker for {} is open", dep.name))))
                };
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                if !relay.committed() {
                    trace.upstream_ms += ms;
                }
                match result {
                    Ok(()) => {
                        crate::observability::breaker_gauge(dep, st.router.record_success(d, ms));
                        break d;
                    }
                    Err(Stop::ClientGone) => {
                        tracing::info!(tokens_sent = relay.tokens_sent(), "client went away; upstream request cancelled");
                        return;
                    }
                    Err(Stop::Failed(e)) => {
                        relay.attempt_failed();
                        span.in_scope(|| tracing::warn!(class = e.class.as_str(), status = e.status, error = %e.message, "attempt failed"));
                        metrics::counter!("meridian_attempt_failures_total", "deployment" => dep.name.clone(), "class" => e.class.as_str()).increment(1);
                        crate::observability::breaker_gauge(dep, st.router.record_failure(d, e.class, st.now_ms()));
                        action = if relay.tool_output_sent() { Action::GiveUp(e) } else { engine.on_outcome(Outcome::Failed(e), st.now_ms(), rand::random()) };
                    }
                }
            }
            Action::GiveUp(e) => {
                match client.commit.take() {
                    Some(c) => {
                        let _ = c.send(Err(ApiError::from(GatewayError::from_upstream(&e)).with_headers(trace.headers())));
                    }
                    None => {
                        let _ = client.tx.send(Bytes::from(StreamRelay::error_frame(&e))).await;
                    }
                }
                return;
            }
            Action::Done => unreachable!("Done only follows a reported success"),
        }
    };
    let dep = &st.router.deployments[answered_by];
    let mut event = usage::event(&st, &principal, dep, relay.model(), relay.usage(), trace.started.elapsed(), true);
    event.feature.clone_from(&trace.feature);
    // Headers went out before the cost was known: it travels in an SSE comment.
    let comment = event.cost_usd.map(|c| format!("x-meridian-cost-usd={c:.8} x-meridian-deployment={}", dep.name));
    relay.finish(comment.as_deref(), &mut client.frames);
    let delivered = client.flush(&relay, &trace).await.is_ok();
    // The answer finished (the engine reported success): cache it for replay as SSE.
    if let (Some(p), true) = (pending, delivered) {
        if let Some(answer) = meridian_shared::cache::CachedAnswer::from_chunks(relay.transcript(), relay.usage(), unix_ms() / 1000) {
            super::semantic::store(&st, p, answer);
        }
    }
    usage::emit(event);
}

/// Starts the driver and answers once the first output chunk (or a final error) is known.
pub async fn respond(st: SharedState, job: Job, trace: Trace) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_FRAMES);
    let (commit_tx, commit_rx) = oneshot::channel();
    let client = Client { tx, commit: Some(commit_tx), frames: Vec::new() };
    tokio::spawn(drive(st, job, trace, client).instrument(tracing::Span::current()));
    match commit_rx.await {
        Ok(Ok(headers)) => {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(b), rx)) });
            let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
            let h = resp.headers_mut();
            h.insert("content-type", HeaderValue::from_static("text/event-stream; charset=utf-8"));
            h.insert("cache-control", HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
            for (k, v) in headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(HeaderName::from_static(k), v);
                }
            }
            resp
        }
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::from(meridian_shared::api::GatewayError::Internal("the stream ended before it started".into())).into_response(),
    }
}
