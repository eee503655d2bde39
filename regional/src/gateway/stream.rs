//! Steps 9–10 for streamed chat: the driver (`meridian_shared::drive::Stream`) decides
//! every attempt, continuation and frame; this module reads provider streams over
//! reqwest with tokio timers and writes the frames into a bounded channel the client
//! response drains (backpressure; a client that leaves closes it, and the upstream
//! request is dropped).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meridian_shared::api::{ChatRequest, GatewayError};
use meridian_shared::auth::{Principal, Region};
use meridian_shared::drive::{Context, Outbound, Read, Start, Stream, StreamStep};
use meridian_shared::relay::StreamRelay;
use meridian_shared::routing::ModelRoute;
use meridian_shared::usage::UsageEvent;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::http::error::ApiError;
use super::headers::Trace;
use super::upstream::{self, unix_ms, MAX_ERROR_BODY};
use crate::state::SharedState;
use crate::{observability, usage};

/// Frames buffered between the provider and a slow client before backpressure.
const CHANNEL_FRAMES: usize = 16;

type Commit = Result<Vec<(&'static str, String)>, ApiError>;

/// The client went away: its channel is closed.
struct ClientGone;

/// The I/O towards the client: the channel and the pending commit of the response.
struct Client {
    tx: mpsc::Sender<Bytes>,
    commit: Option<oneshot::Sender<Commit>>,
    frames: Vec<Vec<u8>>,
}

impl Client {
    /// Sends the frames the driver produced; commits the response on the first ones.
    async fn flush(&mut self, committed: bool, trace: &Trace) -> Result<(), ClientGone> {
        if committed {
            if let Some(c) = self.commit.take() {
                let _ = c.send(Ok(trace.headers()));
            }
        }
        for f in self.frames.drain(..) {
            self.tx.send(Bytes::from(f)).await.map_err(|_| ClientGone)?;
        }
        Ok(())
    }
}

/// One streamed request: what to send, for whom, on which model, where it may go, and
/// whether to cache the finished answer.
pub struct StreamedChat {
    pub req: ChatRequest,
    pub model: Arc<ModelRoute>,
    pub principal: Principal,
    pub region: Option<Region>,
    pub pending: Option<crate::semantic_cache::StoreLater>,
    /// The tenant-limits reservation, settled before the answer's last frame.
    pub reservation: Option<crate::tenant_limits::Reservation>,
}

/// One attempt: send, then feed the stream to the driver until it says the attempt is over.
async fn attempt(http: &reqwest::Client, o: Outbound, d: &mut Stream<'_>, client: &mut Client, trace: &Trace) -> Result<(), ClientGone> {
    let resp = match tokio::time::timeout(Duration::from_millis(o.within_ms), upstream::send(http, o.request)).await {
        Err(_) => {
            d.on_timeout(unix_ms(), &mut client.frames);
            return Ok(());
        }
        Ok(Err(e)) => {
            d.on_transport_error(&upstream::describe(&e), e.is_connect() && e.is_timeout(), unix_ms(), &mut client.frames);
            return Ok(());
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let headers = upstream::header_pairs(resp.headers());
        let body = upstream::read_bounded(resp, MAX_ERROR_BODY, Instant::now() + upstream::ERROR_BODY_WITHIN).await.unwrap_or_default();
        d.on_refused(status, &upstream::as_refs(&headers), &body, unix_ms());
        return Ok(());
    }
    d.on_open(unix_ms());
    let mut resp = resp;
    loop {
        let wait = Duration::from_millis(d.read_within_ms(unix_ms()));
        let read = match tokio::time::timeout(wait, resp.chunk()).await {
            Err(_) => d.on_timeout(unix_ms(), &mut client.frames),
            Ok(Err(e)) => d.on_transport_error(&e.to_string(), false, unix_ms(), &mut client.frames),
            Ok(Ok(None)) => d.on_eof(unix_ms(), &mut client.frames),
            Ok(Ok(Some(bytes))) => d.on_bytes(&bytes, unix_ms(), &mut client.frames),
        };
        client.flush(d.committed(), trace).await?;
        if read == Read::Over {
            return Ok(());
        }
    }
}

async fn pump(st: SharedState, chat: StreamedChat, mut trace: Trace, mut client: Client) {
    let StreamedChat { req, model, principal, region, pending, reservation } = chat;
    let settle = |f: Option<&meridian_shared::drive::Finished>| {
        let (tokens, cost) = f.map_or((0, 0.0), |f| (f.usage.total_tokens, f.cost_usd.unwrap_or(0.0)));
        let (st, r) = (st.clone(), reservation.clone());
        async move {
            if let Some(r) = r {
                st.tenant_limits.settle(&r, tokens, cost).await;
            }
        }
    };
    let ctx = Context::new(&st.config, &st.router, &st.prices, &model);
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let mut d = Stream::new(ctx, req, &model, region, id, pending.is_some(), Start { now_ms: unix_ms(), seed: rand::random() });
    let http = st.client(&model.route);
    let usage_event = |f: &meridian_shared::drive::Finished, trace: &Trace| {
        let dep = &st.router.deployments[f.deployment];
        let mut e = UsageEvent::for_principal(&principal, st.region(), trace.feature.clone());
        e.finished(&dep.name, &dep.provider_name, f);
        e.latency_ms = trace.started.elapsed().as_secs_f64() * 1000.0;
        e
    };
    loop {
        match d.next(unix_ms()) {
            StreamStep::Wait(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                trace.upstream_ms += ms as f64;
            }
            StreamStep::Send(o) => {
                let span = trace.attempt(&st.router, o.turn);
                let t0 = Instant::now();
                let sent = attempt(http, o, &mut d, &mut client, &trace).instrument(span).await;
                if !d.committed() {
                    trace.upstream_ms += t0.elapsed().as_secs_f64() * 1000.0;
                }
                if sent.is_err() {
                    d.on_client_gone(unix_ms());
                    tracing::info!(tokens_sent = d.relay().tokens_sent(), "client went away; upstream request cancelled");
                    // What it received is billed.
                    let f = d.interrupted();
                    settle(f.as_ref()).await;
                    if let Some(f) = f {
                        usage::emit(usage_event(&f, &trace));
                    }
                }
                observability::attempts(&d.attempts().take_events(), st.region());
                if sent.is_err() {
                    return;
                }
            }
            StreamStep::Done(f) => {
                let event = usage_event(&f, &trace);
                settle(Some(&f)).await;
                d.close(&f, &mut client.frames);
                let delivered = client.flush(true, &trace).await.is_ok();
                // The answer finished: cache it for replay as SSE.
                if let (Some(p), true) = (pending, delivered) {
                    if let Some(answer) = d.answer_to_cache(&f, unix_ms() / 1000) {
                        crate::semantic_cache::lookup::store(&st, p, answer);
                    }
                }
                usage::emit(event);
                return;
            }
            StreamStep::GiveUp(e) => {
                observability::attempts(&d.attempts().take_events(), st.region());
                // Settled before the client hears of it, so its next request sees the limits right.
                let f = d.interrupted();
                settle(f.as_ref()).await;
                match client.commit.take() {
                    Some(c) => {
                        let _ = c.send(Err(ApiError::from(GatewayError::from_upstream(&e)).with_headers(trace.headers())));
                    }
                    None => {
                        let _ = client.tx.send(Bytes::from(StreamRelay::error_frame(&e))).await;
                    }
                }
                if let Some(f) = f {
                    usage::emit(usage_event(&f, &trace));
                }
                return;
            }
        }
    }
}

/// Starts the driver and answers once the first output chunk (or a final error) is known.
pub async fn respond(st: SharedState, chat: StreamedChat, trace: Trace) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_FRAMES);
    let (commit_tx, commit_rx) = oneshot::channel();
    let client = Client { tx, commit: Some(commit_tx), frames: Vec::new() };
    tokio::spawn(pump(st, chat, trace, client).instrument(tracing::Span::current()));
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
        Err(_) => ApiError::from(GatewayError::Internal("the stream ended before it started".into())).into_response(),
    }
}
