//! Steps 8–10 at the edge: the drivers of `meridian_shared::drive` decide every attempt,
//! continuation and frame; this module performs them over `fetch` with `Delay` timers.
//! Streams run in a task inside `waitUntil` that writes frames into a bounded channel the
//! client response drains (backpressure; a client that leaves closes the channel and the
//! task stops).

use std::rc::Rc;

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use meridian_shared::api::{ChatRequest, ChatResponse, GatewayError};
use meridian_shared::auth::Region;
use meridian_shared::cache::CachedAnswer;
use meridian_shared::drive::{Answered, AttemptEvent, ChatCall, Complete, Context, Finished, Outbound, Read, Start, Step, Stream, StreamStep};
use meridian_shared::failover::UpstreamError;
use meridian_shared::relay::StreamRelay;
use meridian_shared::routing::ModelRoute;
use worker::{Context as WorkerContext, Delay, Headers, Response};

use crate::clock::{now_ms, random_id, random_u64};
use crate::respond::{self, Trace};
use crate::settings::Settings;
use crate::upstream::{self, Failure, ERROR_BODY_WITHIN_MS, MAX_BODY, MAX_ERROR_BODY};

const CHANNEL_FRAMES: usize = 16;

async fn sleep(ms: u64) {
    Delay::from(std::time::Duration::from_millis(ms)).await;
}

/// Notes the attempt the driver asked for in the trace (headers name the last one).
fn note(s: &Settings, trace: &mut Trace, o: &Outbound) {
    let d = &s.router.deployments[o.turn.deployment];
    trace.attempts = o.turn.attempt;
    trace.deployment = Some(d.name.clone());
    trace.provider = Some(d.provider_name.clone());
}

/// The attempt log of a request whose events go nowhere else, as JSON lines.
pub fn log_attempts(events: &[AttemptEvent]) {
    for e in events.iter().filter(|e| !e.ok()) {
        worker::console_warn!("{}", serde_json::json!({"msg": "attempt failed", "attempt": e}));
    }
}

/// A non-streamed chat: the answer (with deployment and cost) and the attempt log, or
/// the error to return.
pub async fn complete(s: &Settings, req: &ChatRequest, model: &ModelRoute, region: Option<Region>, trace: &mut Trace) -> (Result<Answered<ChatResponse>, UpstreamError>, Vec<AttemptEvent>) {
    let mut d = Complete::new(Context::new(&s.config, &s.router, &s.prices, model), ChatCall(req), model, region, Start { now_ms: now_ms(), seed: random_u64() });
    let mut log = Vec::new();
    loop {
        match d.next(now_ms()) {
            Step::Wait(ms) => {
                sleep(ms).await;
                trace.upstream_ms += ms as f64;
            }
            Step::Send(o) => {
                note(s, trace, &o);
                let t0 = now_ms();
                let deadline = t0 + o.within_ms;
                match upstream::send(o.request, o.within_ms).await {
                    Err(Failure::TimedOut) => d.on_timeout(false, now_ms()),
                    Err(Failure::Failed(m)) => d.on_transport_error(meridian_shared::drive::transport_error(m, false), now_ms()),
                    Ok(mut resp) => {
                        let status = resp.status_code();
                        let ok = (200..300).contains(&status);
                        // Only an error's headers matter (Retry-After, retry hints).
                        let headers = if ok { Vec::new() } else { upstream::header_pairs(&resp) };
                        let until = if ok { deadline } else { deadline.min(now_ms() + ERROR_BODY_WITHIN_MS) };
                        match upstream::read_body(&mut resp, if ok { MAX_BODY } else { MAX_ERROR_BODY }, until).await {
                            Ok(body) => d.on_response(status, &upstream::as_refs(&headers), &body, now_ms()),
                            Err(_) if !ok => d.on_response(status, &upstream::as_refs(&headers), b"", now_ms()),
                            Err(Failure::TimedOut) => d.on_timeout(true, now_ms()),
                            Err(Failure::Failed(m)) => d.on_transport_error(meridian_shared::drive::transport_error(m, false), now_ms()),
                        }
                    }
                }
                trace.upstream_ms += now_ms().saturating_sub(t0) as f64;
                log.extend(d.attempts().take_events());
            }
            Step::Done(a) => return (Ok(a), log),
            Step::GiveUp(e) => {
                log.extend(d.attempts().take_events());
                return (Err(e), log);
            }
        }
    }
}

/// What to stream: the request, its model, the provider region restriction, and whether
/// to keep the answer for the caches.
pub struct StreamedChat {
    pub req: ChatRequest,
    pub model: std::sync::Arc<ModelRoute>,
    pub region: Option<Region>,
    pub cache: bool,
}

/// How a stream ended, for settlement, usage and the caches: the answer (or the part an
/// interrupted stream delivered), its transcript, and the attempt log.
pub struct Streamed {
    pub finished: Option<Finished>,
    pub answer: Option<CachedAnswer>,
    pub attempts: Vec<AttemptEvent>,
}

struct ClientGone;

struct Client {
    tx: mpsc::Sender<Vec<u8>>,
    /// The response headers once the answer starts, or the error with the trace's headers.
    commit: Option<oneshot::Sender<Result<Headers, (GatewayError, Headers)>>>,
    frames: Vec<Vec<u8>>,
}

impl Client {
    async fn flush(&mut self, committed: bool, trace: &Trace) -> Result<(), ClientGone> {
        if committed {
            if let Some(c) = self.commit.take() {
                let _ = c.send(Ok(trace.headers()));
            }
        }
        for f in self.frames.drain(..) {
            self.tx.send(f).await.map_err(|_| ClientGone)?;
        }
        Ok(())
    }
}

/// One streamed attempt: send, then feed the stream to the driver until it says the
/// attempt is over.
async fn attempt(o: Outbound, d: &mut Stream<'_>, client: &mut Client, trace: &Trace) -> Result<(), ClientGone> {
    let mut resp = match upstream::send(o.request, o.within_ms).await {
        Err(Failure::TimedOut) => {
            d.on_timeout(now_ms(), &mut client.frames);
            return Ok(());
        }
        Err(Failure::Failed(m)) => {
            d.on_transport_error(&m, false, now_ms(), &mut client.frames);
            return Ok(());
        }
        Ok(r) => r,
    };
    let status = resp.status_code();
    if !(200..300).contains(&status) {
        let headers = upstream::header_pairs(&resp);
        let body = upstream::read_body(&mut resp, MAX_ERROR_BODY, now_ms() + ERROR_BODY_WITHIN_MS).await.unwrap_or_default();
        d.on_refused(status, &upstream::as_refs(&headers), &body, now_ms());
        return Ok(());
    }
    let mut bytes = match resp.stream() {
        Ok(b) => b,
        Err(e) => {
            d.on_transport_error(&e.to_string(), false, now_ms(), &mut client.frames);
            return Ok(());
        }
    };
    d.on_open(now_ms());
    loop {
        let wait = d.read_within_ms(now_ms());
        let read = match upstream::next_chunk(&mut bytes, wait).await {
            Ok(Some(b)) => d.on_bytes(&b, now_ms(), &mut client.frames),
            Ok(None) => d.on_eof(now_ms(), &mut client.frames),
            Err(Failure::TimedOut) => d.on_timeout(now_ms(), &mut client.frames),
            Err(Failure::Failed(m)) => d.on_transport_error(&m, false, now_ms(), &mut client.frames),
        };
        client.flush(d.committed(), trace).await?;
        if read == Read::Over {
            return Ok(());
        }
    }
}

/// Runs the stream to its end. `settle` runs before the closing frames, so by the time a
/// client reads `[DONE]` its limits are settled and the answer is cached.
async fn pump<S, SFut>(s: Rc<Settings>, chat: StreamedChat, mut trace: Trace, mut client: Client, settle: S) -> Streamed
where
    S: FnOnce(&Streamed) -> SFut,
    SFut: std::future::Future<Output = ()>,
{
    let StreamedChat { req, model, region, cache } = chat;
    let mut d = Stream::new(Context::new(&s.config, &s.router, &s.prices, &model), req, &model, region, format!("chatcmpl-{}", random_id()), cache, Start { now_ms: now_ms(), seed: random_u64() });
    let mut log = Vec::new();
    loop {
        match d.next(now_ms()) {
            StreamStep::Wait(ms) => {
                sleep(ms).await;
                trace.upstream_ms += ms as f64;
            }
            StreamStep::Send(o) => {
                note(&s, &mut trace, &o);
                let t0 = now_ms();
                let sent = attempt(o, &mut d, &mut client, &trace).await;
                if !d.committed() {
                    trace.upstream_ms += now_ms().saturating_sub(t0) as f64;
                }
                if sent.is_err() {
                    d.on_client_gone(now_ms());
                    log.extend(d.attempts().take_events());
                    // What the client received is still settled and billed.
                    let out = Streamed { finished: d.interrupted(), answer: None, attempts: log };
                    settle(&out).await;
                    return out;
                }
                log.extend(d.attempts().take_events());
            }
            StreamStep::Done(f) => {
                let answer = cache.then(|| d.answer_to_cache(&f, now_ms() / 1000)).flatten();
                let out = Streamed { finished: Some(f), answer, attempts: log };
                settle(&out).await;
                if let Some(f) = &out.finished {
                    d.close(f, &mut client.frames);
                }
                let _ = client.flush(true, &trace).await;
                return out;
            }
            StreamStep::GiveUp(e) => {
                log.extend(d.attempts().take_events());
                let out = Streamed { finished: d.interrupted(), answer: None, attempts: log };
                settle(&out).await;
                match client.commit.take() {
                    Some(c) => {
                        let _ = c.send(Err((GatewayError::from_upstream(&e), trace.headers())));
                    }
                    None => {
                        let _ = client.tx.send(StreamRelay::error_frame(&e)).await;
                    }
                }
                return out;
            }
        }
    }
}

/// Starts the stream inside `waitUntil` (so the request stays alive until the stream,
/// `settle` — limits, caches — and `after` — the usage event — have finished); answers
/// once the first output chunk (or a final error) is known.
pub async fn stream<S, SFut, A, AFut>(ctx: &WorkerContext, s: Rc<Settings>, chat: StreamedChat, trace: Trace, settle: S, after: A) -> Response
where
    S: FnOnce(&Streamed) -> SFut + 'static,
    SFut: std::future::Future<Output = ()> + 'static,
    A: FnOnce(Streamed) -> AFut + 'static,
    AFut: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = mpsc::channel::<Vec<u8>>(CHANNEL_FRAMES);
    let (commit_tx, commit_rx) = oneshot::channel();
    let client = Client { tx, commit: Some(commit_tx), frames: Vec::new() };
    ctx.wait_until(async move {
        let out = pump(s, chat, trace, client, settle).await;
        after(out).await;
    });
    match commit_rx.await {
        Ok(Ok(headers)) => {
            let _ = headers.set("content-type", "text/event-stream; charset=utf-8");
            let _ = headers.set("cache-control", "no-cache");
            match Response::from_stream(rx.map(Ok::<Vec<u8>, worker::Error>)) {
                Ok(r) => r.with_headers(headers),
                Err(e) => respond::error(&GatewayError::Internal(e.to_string()), Headers::new()),
            }
        }
        Ok(Err((e, headers))) => respond::error(&e, headers),
        Err(_) => respond::error(&GatewayError::Internal("the stream ended before it started".into()), Headers::new()),
    }
}
