//! Steps 9–10 for streaming requests: failover before the first token is invisible to
//! the client (the first output chunk is peeked before the response is committed);
//! after that, a broken stream is continued on a fallback or ended with an in-band
//! error event — never presented as a clean finish.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meridian_shared::api::{ChatChunk, ChatRequest, Usage};
use meridian_shared::auth::{Principal, Region};
use meridian_shared::failover::{Action, AttemptMode, Engine, ErrorClass, Outcome, TimeoutKind, UpstreamError};
use meridian_shared::providers::{self, StreamDecoder, StreamEvent};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::attempt::{self, remaining, timeout_error, unix_ms};
use super::continuation::continuation;
use super::error::{from_upstream, ApiError};
use super::headers::Trace;
use crate::state::SharedState;
use crate::usage::{self, UsageEvent};

/// Frames buffered between the provider and a slow client before backpressure.
const CHANNEL_FRAMES: usize = 16;

type Commit = Result<Vec<(&'static str, String)>, ApiError>;

/// Why an attempt ended without a complete answer.
enum Stop {
    Failed(UpstreamError),
    ClientGone,
}

/// The client-facing side of one streamed request, kept across attempts.
struct Relay {
    tx: mpsc::Sender<Bytes>,
    commit: Option<oneshot::Sender<Commit>>,
    trace: Trace,
    /// One id for the client across attempts.
    id: String,
    created: u64,
    text_sent: String,
    tool_output_sent: bool,
    tokens_sent: u64,
    /// Chunks held back until the first output chunk commits the response.
    held: Vec<ChatChunk>,
    usage: Option<Usage>,
    model: String,
}

impl Relay {
    fn committed(&self) -> bool {
        self.commit.is_none()
    }

    async fn send(&self, bytes: Bytes) -> Result<(), Stop> {
        self.tx.send(bytes).await.map_err(|_| Stop::ClientGone)
    }

    async fn send_chunk(&self, c: &ChatChunk) -> Result<(), Stop> {
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut b, c).expect("chunk serialises");
        b.extend_from_slice(b"\n\n");
        self.send(Bytes::from(b)).await
    }

    fn commit_now(&mut self) {
        if let Some(c) = self.commit.take() {
            let _ = c.send(Ok(self.trace.headers()));
        }
    }

    /// Forwards one provider chunk: rewrites the id, strips usage (reported at the end),
    /// and commits the response on the first chunk that carries output.
    async fn forward(&mut self, mut c: ChatChunk, continuing: bool) -> Result<(), Stop> {
        if let Some(u) = c.usage.take() {
            self.usage = Some(u);
        }
        if c.choices.is_empty() {
            return Ok(());
        }
        if !c.model.is_empty() {
            self.model = c.model.clone();
        }
        c.id.clone_from(&self.id);
        if continuing {
            for ch in &mut c.choices {
                ch.delta.role = None;
            }
            if !c.carries_output() && c.finish_reason().is_none() {
                return Ok(());
            }
        }
        for ch in &c.choices {
            if let Some(t) = &ch.delta.content {
                self.text_sent.push_str(t);
            }
            if ch.delta.tool_calls.is_some() {
                self.tool_output_sent = true;
            }
        }
        let output = c.carries_output();
        if output {
            self.tokens_sent += 1;
        }
        if !self.committed() {
            if !output && c.finish_reason().is_none() {
                self.held.push(c);
                return Ok(());
            }
            self.commit_now();
            for h in std::mem::take(&mut self.held) {
                self.send_chunk(&h).await?;
            }
        }
        self.send_chunk(&c).await
    }

    fn broken(&self, message: impl Into<String>) -> UpstreamError {
        UpstreamError::new(ErrorClass::StreamBroken { tokens_sent: self.tokens_sent }, None, message)
    }
}

/// Reads one upstream stream to its end. `Ok` means the provider finished the answer.
async fn attempt(st: &SharedState, relay: &mut Relay, req: &ChatRequest, d: usize, route: &str, mode: AttemptMode, deadline: Instant) -> Result<(), Stop> {
    let dep = &st.router.deployments[d];
    let t = st.route(route).timeouts;
    let body = match mode {
        AttemptMode::Fresh => req.clone(),
        AttemptMode::Continue => continuation(req, &relay.text_sent, dep.kind),
    };
    let up = providers::build_chat(dep.kind, dep.target(st.config.limits.default_max_tokens), &body, true)
        .map_err(|e| Stop::Failed(UpstreamError::new(ErrorClass::BadRequest, None, e.to_string())))?;
    let mut resp = attempt::send(st.client(route), dep.kind, up, Duration::from_millis(t.first_byte_ms), deadline, unix_ms()).await.map_err(Stop::Failed)?;
    let mut decoder = StreamDecoder::new(dep.kind, &relay.id, relay.created);
    let mut events = Vec::new();
    let mut got_output = false;
    let mut finished = false;
    let continuing = mode == AttemptMode::Continue;
    loop {
        let (limit, kind) = if got_output { (t.idle_ms, TimeoutKind::Idle) } else { (t.first_token_ms, TimeoutKind::FirstToken) };
        let wait = Duration::from_millis(limit).min(remaining(deadline));
        let next = match tokio::time::timeout(wait, resp.chunk()).await {
            Err(_) if finished => return Ok(()), // finish seen, terminator late: done
            Err(_) if relay.tokens_sent > 0 => return Err(Stop::Failed(relay.broken(format!("stream stalled: no chunk within {} ms", wait.as_millis())))),
            Err(_) => return Err(Stop::Failed(timeout_error(kind, wait))),
            Ok(Err(e)) if finished => {
                tracing::debug!(error = %e, "connection dropped after finish");
                return Ok(());
            }
            Ok(Err(e)) => return Err(Stop::Failed(relay.broken(format!("stream cut: {e}")))),
            Ok(Ok(n)) => n,
        };
        match &next {
            Some(bytes) => decoder.feed(bytes, &mut events).map_err(|e| Stop::Failed(relay.broken(e.message)))?,
            None => decoder.finish(&mut events),
        }
        for ev in events.drain(..) {
            match ev {
                StreamEvent::Chunk(c) => {
                    finished |= c.finish_reason().is_some();
                    got_output |= c.carries_output();
                    relay.forward(c, continuing).await?;
                }
                StreamEvent::Done => return Ok(()),
                StreamEvent::Error(e) => {
                    let mut e = e;
                    e.class = ErrorClass::StreamBroken { tokens_sent: relay.tokens_sent };
                    return Err(Stop::Failed(e));
                }
            }
        }
        if next.is_none() {
            // A stream that ends without its terminator is complete only if the
            // provider said why it finished; otherwise it was cut.
            return if finished { Ok(()) } else { Err(Stop::Failed(relay.broken("stream ended before the provider finished the answer"))) };
        }
    }
}

fn in_band_error(e: &UpstreamError) -> Bytes {
    let body = serde_json::json!({"error": {
        "message": format!("the answer was interrupted and could not be completed: {}", e.message),
        "type": "upstream_error", "param": null, "code": "stream_interrupted"}});
    Bytes::from(format!("data: {body}\n\n"))
}

async fn drive(st: SharedState, req: ChatRequest, model_name: String, principal: Principal, region: Option<Region>, mut relay: Relay) {
    let Some(model) = st.router.models.get(&model_name) else { return };
    let route = st.route(&model.route);
    let deadline = Instant::now() + Duration::from_millis(route.timeouts.total_ms);
    let mut engine = Engine::new(st.router.plan(model, region, st.now_ms()), route.policy(), st.now_ms());
    let mut action = engine.start();
    let answered_by = loop {
        match action {
            Action::Attempt { deployment: d, after_ms, mode, attempt: n } => {
                if after_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    relay.trace.upstream_ms += after_ms as f64;
                }
                let dep = &st.router.deployments[d];
                relay.trace.attempts = n;
                if n > 1 {
                    metrics::counter!("meridian_retries_total", "route" => model.route.clone()).increment(1);
                }
                relay.trace.deployment = Some(dep.name.clone());
                relay.trace.provider = Some(dep.provider_name.clone());
                let span = tracing::info_span!("attempt", attempt = n, deployment = %dep.name, provider = dep.kind.as_str(), continuation = mode == AttemptMode::Continue);
                let t0 = Instant::now();
                let result = if st.router.acquire(d, st.now_ms()) {
                    attempt(&st, &mut relay, &req, d, &model.route, mode, deadline).instrument(span.clone()).await
                } else {
                    Err(Stop::Failed(UpstreamError::new(ErrorClass::Transient, None, format!("circuit breaker for {} is open", dep.name))))
                };
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                if !relay.committed() {
                    relay.trace.upstream_ms += ms;
                }
                match result {
                    Ok(()) => {
                        st.router.record_success(d, ms);
                        break d;
                    }
                    Err(Stop::ClientGone) => {
                        tracing::info!(tokens_sent = relay.tokens_sent, "client went away; upstream request cancelled");
                        return;
                    }
                    Err(Stop::Failed(e)) => {
                        // Chunks held back from a failed attempt never reach the client.
                        relay.held.clear();
                        span.in_scope(|| tracing::warn!(class = e.class.as_str(), status = e.status, error = %e.message, "attempt failed"));
                        metrics::counter!("meridian_attempt_failures_total", "deployment" => dep.name.clone(), "class" => e.class.as_str()).increment(1);
                        st.router.record_failure(d, e.class, st.now_ms());
                        action = if relay.tool_output_sent { Action::GiveUp(e) } else { engine.on_outcome(Outcome::Failed(e), st.now_ms(), rand::random()) };
                    }
                }
            }
            Action::GiveUp(e) => {
                if let Some(c) = relay.commit.take() {
                    let _ = c.send(Err(ApiError::from(from_upstream(&e)).with_headers(relay.trace.headers())));
                } else {
                    let _ = relay.tx.send(in_band_error(&e)).await;
                }
                return;
            }
            Action::Done => unreachable!("Done only follows a reported success"),
        }
    };
    relay.commit_now();
    let usage = relay.usage.unwrap_or_default();
    if req.wants_stream_usage() {
        let mut c = ChatChunk::new(&relay.id, &relay.model, relay.created);
        c.usage = Some(usage);
        let _ = relay.send_chunk(&c).await;
    }
    let dep = &st.router.deployments[answered_by];
    let event = UsageEvent::new(&st, &principal, dep, &relay.model, usage, relay.trace.started.elapsed(), true);
    // Headers went out before the cost was known: report it in an SSE comment, which
    // clients ignore by the spec, ahead of [DONE].
    if let Some(c) = event.cost_usd {
        let _ = relay.send(Bytes::from(format!(": x-meridian-cost-usd={c:.8} x-meridian-deployment={}\n\n", dep.name))).await;
    }
    let _ = relay.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
    usage::emit(event);
}

/// Starts the driver and answers once the first output chunk (or a final error) is known.
pub async fn respond(st: SharedState, req: ChatRequest, model_name: String, principal: Principal, region: Option<Region>, trace: Trace) -> Response {
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_FRAMES);
    let (commit_tx, commit_rx) = oneshot::channel();
    let relay = Relay {
        tx,
        commit: Some(commit_tx),
        trace,
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: unix_ms() / 1000,
        text_sent: String::new(),
        tool_output_sent: false,
        tokens_sent: 0,
        held: Vec::new(),
        usage: None,
        model: String::new(),
    };
    tokio::spawn(drive(st, req, model_name, principal, region, relay).instrument(tracing::Span::current()));
    match commit_rx.await {
        Ok(Ok(headers)) => {
            let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(b), rx)) }));
            let mut resp = (StatusCode::OK, body).into_response();
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
        Err(_) => {
            // The driver ended without committing: the client is gone or the model vanished.
            rx.close();
            ApiError::from(meridian_shared::api::GatewayError::Internal("the stream ended before it started".into())).into_response()
        }
    }
}
