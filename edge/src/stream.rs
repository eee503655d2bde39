//! Steps 9–10 for streamed calls at the edge: the core's relay and attempt machines,
//! driven by a task that reads provider streams over `fetch` and writes frames into a
//! bounded channel the client response drains (backpressure; a client that leaves
//! closes the channel and the task stops).

use std::rc::Rc;

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use meridian_shared::api::{ChatRequest, GatewayError, Usage};
use meridian_shared::auth::Region;
use meridian_shared::cache::CachedAnswer;
use meridian_shared::failover::{Action, AttemptMode, Engine, ErrorClass, Outcome, TimeoutKind, UpstreamError};
use meridian_shared::providers;
use meridian_shared::relay::{continuation, AttemptStream, Step, StreamRelay};
use worker::{Context, Delay, Headers, Response};

use crate::clock::{now_ms, random_f64, random_id};
use crate::respond::{self, Trace};
use crate::settings::Settings;
use crate::upstream::{self, remaining};

const CHANNEL_FRAMES: usize = 16;

/// What to stream: the request, its model alias, the provider region restriction, and
/// whether to keep the answer for the cache.
pub struct Job {
    pub req: ChatRequest,
    pub model_name: String,
    pub region: Option<Region>,
    pub cache: bool,
}

/// How the stream ended, for settlement, usage and the cache.
pub struct Finished {
    pub deployment: Option<usize>,
    pub model: String,
    pub usage: Usage,
    pub answer: Option<CachedAnswer>,
}

enum Stop {
    Failed(UpstreamError),
    ClientGone,
}

struct Client {
    tx: mpsc::Sender<Vec<u8>>,
    commit: Option<oneshot::Sender<Result<Headers, GatewayError>>>,
    frames: Vec<Vec<u8>>,
}

impl Client {
    async fn flush(&mut self, relay: &StreamRelay, trace: &Trace) -> Result<(), Stop> {
        if relay.committed() {
            if let Some(c) = self.commit.take() {
                let _ = c.send(Ok(trace.headers()));
            }
        }
        for f in self.frames.drain(..) {
            self.tx.send(f).await.map_err(|_| Stop::ClientGone)?;
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn attempt(s: &Settings, relay: &mut StreamRelay, client: &mut Client, trace: &Trace, req: &ChatRequest, d: usize, route: &str, mode: AttemptMode, deadline: u64) -> Result<(), Stop> {
    let dep = &s.router.deployments[d];
    let t = s.config.routes.get(route).copied().unwrap_or_default().timeouts;
    let body = match mode {
        AttemptMode::Fresh => req.clone(),
        AttemptMode::Continue => continuation(req, relay.text_sent(), dep.kind),
    };
    let up = providers::build_chat(dep.kind, dep.target(s.config.limits.default_max_tokens), &body, true)
        .map_err(|e| Stop::Failed(UpstreamError::new(ErrorClass::BadRequest, None, e.to_string())))?;
    let mut resp = upstream::send(up, dep.kind, t.first_byte_ms, deadline).await.map_err(Stop::Failed)?;
    let mut bytes = resp.stream().map_err(|e| Stop::Failed(UpstreamError::new(ErrorClass::Transient, None, e.to_string())))?;
    let mut a = AttemptStream::new(dep.kind, "", now_ms() / 1000, mode == AttemptMode::Continue);
    loop {
        let limit = if a.timer() == TimeoutKind::Idle { t.idle_ms } else { t.first_token_ms };
        let wait = limit.min(remaining(deadline));
        let step = match upstream::next_chunk(&mut bytes, wait).await {
            Ok(Some(b)) => a.on_bytes(&b, relay, &mut client.frames),
            Ok(None) => a.on_eof(relay, &mut client.frames),
            Err(None) => a.on_timeout(relay, wait),
            Err(Some(e)) => a.on_transport_error(relay, &e),
        };
        client.flush(relay, trace).await?;
        match step {
            Step::Continue => {}
            Step::Complete => return Ok(()),
            Step::Failed(e) => return Err(Stop::Failed(e)),
        }
    }
}

/// Runs the request to its end. `settle` runs before the closing frames, so by the time
/// a client reads `[DONE]` its limits are settled and the answer is cached.
async fn drive<S, SFut>(s: Rc<Settings>, job: Job, mut trace: Trace, mut client: Client, settle: S) -> Finished
where
    S: FnOnce(&Finished) -> SFut,
    SFut: std::future::Future<Output = ()>,
{
    let Job { req, model_name, region, cache } = job;
    let mut relay = StreamRelay::new(format!("chatcmpl-{}", random_id()), now_ms() / 1000, req.wants_stream_usage());
    if cache {
        relay.keep_transcript();
    }
    let unanswered = |relay: &StreamRelay| Finished { deployment: None, model: relay.model().to_string(), usage: Usage::default(), answer: None };
    let Some(model) = s.router.models.get(&model_name) else {
        let f = unanswered(&relay);
        settle(&f).await;
        return f;
    };
    let route = s.config.routes.get(&model.route).copied().unwrap_or_default();
    let deadline = now_ms() + route.timeouts.total_ms;
    let mut engine = Engine::new(s.router.plan(model, region, now_ms(), random_f64(), random_f64()), route.policy(), now_ms());
    let mut action = engine.start();
    let answered_by = loop {
        match action {
            Action::Attempt { deployment: d, after_ms, mode, attempt: n } => {
                if after_ms > 0 {
                    Delay::from(std::time::Duration::from_millis(after_ms)).await;
                    trace.upstream_ms += after_ms as f64;
                }
                let dep = &s.router.deployments[d];
                trace.attempts = n;
                trace.deployment = Some(dep.name.clone());
                trace.provider = Some(dep.provider_name.clone());
                let t0 = now_ms();
                let result = if s.router.acquire(d, now_ms()) {
                    attempt(&s, &mut relay, &mut client, &trace, &req, d, &model.route, mode, deadline).await
                } else {
                    Err(Stop::Failed(UpstreamError::new(ErrorClass::Transient, None, format!("circuit breaker for {} is open", dep.name))))
                };
                let ms = now_ms().saturating_sub(t0) as f64;
                if !relay.committed() {
                    trace.upstream_ms += ms;
                }
                match result {
                    Ok(()) => {
                        s.router.record_success(d, ms);
                        break d;
                    }
                    Err(Stop::ClientGone) => {
                        let f = unanswered(&relay);
                        settle(&f).await;
                        return f;
                    }
                    Err(Stop::Failed(e)) => {
                        relay.attempt_failed();
                        worker::console_warn!("attempt {n} on {} failed: {} ({})", dep.name, e.message, e.class.as_str());
                        s.router.record_failure(d, e.class, now_ms());
                        action = if relay.tool_output_sent() { Action::GiveUp(e) } else { engine.on_outcome(Outcome::Failed(e), now_ms(), random_f64()) };
                    }
                }
            }
            Action::GiveUp(e) => {
                let f = unanswered(&relay);
                settle(&f).await;
                match client.commit.take() {
                    Some(c) => {
                        let _ = c.send(Err(GatewayError::from_upstream(&e)));
                    }
                    None => {
                        let _ = client.tx.send(StreamRelay::error_frame(&e)).await;
                    }
                }
                return f;
            }
            Action::Done => unreachable!("Done only follows a reported success"),
        }
    };
    let dep = &s.router.deployments[answered_by];
    let usage = relay.usage();
    let cost = dep.price.or_else(|| s.prices.lookup(relay.model())).map(|p| p.cost(&usage));
    let comment = cost.map(|c| format!("x-meridian-cost-usd={c:.8} x-meridian-deployment={}", dep.name));
    let answer = cache.then(|| CachedAnswer::from_chunks(relay.transcript(), usage, now_ms() / 1000)).flatten();
    let f = Finished { deployment: Some(answered_by), model: relay.model().to_string(), usage, answer };
    settle(&f).await;
    relay.finish(comment.as_deref(), &mut client.frames);
    let _ = client.flush(&relay, &trace).await;
    f
}

/// Starts the driver inside `waitUntil` (so the request stays alive until the stream,
/// `settle` — limits, cache — and `after` — the usage event — have finished); answers
/// once the first output chunk (or a final error) is known.
pub async fn respond<S, SFut, A, AFut>(ctx: &Context, s: Rc<Settings>, job: Job, trace: Trace, settle: S, after: A) -> Response
where
    S: FnOnce(&Finished) -> SFut + 'static,
    SFut: std::future::Future<Output = ()> + 'static,
    A: FnOnce(Finished) -> AFut + 'static,
    AFut: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = mpsc::channel::<Vec<u8>>(CHANNEL_FRAMES);
    let (commit_tx, commit_rx) = oneshot::channel();
    let request_id = trace.request_id.clone();
    let client = Client { tx, commit: Some(commit_tx), frames: Vec::new() };
    ctx.wait_until(async move {
        let finished = drive(s, job, trace, client, settle).await;
        after(finished).await;
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
        Ok(Err(e)) => {
            let h = Headers::new();
            let _ = h.set("x-request-id", &request_id);
            respond::error(&e, h)
        }
        Err(_) => respond::error(&GatewayError::Internal("the stream ended before it started".into()), Headers::new()),
    }
}
