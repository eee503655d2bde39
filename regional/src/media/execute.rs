//! Running one media request against its model's deployments: the shared driver
//! (`meridian_shared::drive::Attempts`, with the process's [`MediaFleet`] breakers)
//! decides each attempt; an attempt speaks the sans-I/O adapters of
//! `meridian_shared::media::providers` over reqwest. Asynchronous providers (video) are
//! polled until their task ends, with progress reported; their output is downloaded.
//! Every attempt is bounded by `provider_timeout_ms`.

use std::time::{Duration, Instant};

use meridian_shared::config::{MediaConfig, MediaDeployment};
use meridian_shared::drive::{Attempts, Next};
use meridian_shared::failover::{ErrorClass, RetryPolicy, UpstreamError};
use meridian_shared::media::fleet::MediaFleet;
use meridian_shared::media::providers::{self, Answer, MediaTarget, Output, TaskState, UpstreamRequest};
use meridian_shared::media::MediaRequest;
use tokio::sync::watch;

use crate::clock::unix_ms;

/// What a successful run produced.
pub struct Produced {
    pub outputs: Vec<Output>,
    pub deployment: String,
    pub provider: &'static str,
    pub provider_model: String,
    pub cost_usd: Option<f64>,
}

/// Why a run failed, and whether trying again later may help.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: String,
    pub retryable: bool,
}

pub struct Executor<'a> {
    pub cfg: &'a MediaConfig,
    /// The deployments' breakers, shared by the process's workers.
    pub fleet: &'a MediaFleet,
    pub http: &'a reqwest::Client,
    /// Resolves `api_key_env` names.
    pub secret: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// This region, for the attempt metrics.
    pub region: &'a str,
}

struct Response {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

fn timeout(class: &str) -> UpstreamError {
    UpstreamError::new(ErrorClass::Timeout(meridian_shared::failover::TimeoutKind::Total), None, format!("{class} timed out"))
}

impl Executor<'_> {
    async fn send(&self, up: UpstreamRequest, deadline: Instant, max_bytes: usize) -> Result<Response, UpstreamError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout("the provider call"));
        }
        let method = reqwest::Method::from_bytes(up.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut rb = self.http.request(method, &up.url).timeout(left);
        for (k, v) in &up.headers {
            rb = rb.header(*k, v);
        }
        if !up.body.is_empty() {
            rb = rb.body(up.body);
        }
        let resp = rb.send().await.map_err(|e| if e.is_timeout() { timeout("the provider call") } else { UpstreamError::new(ErrorClass::Transient, None, format!("connection failed: {e}")) })?;
        let status = resp.status().as_u16();
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (content_type, retry_after) = (header("content-type").unwrap_or_default(), header("retry-after"));
        if resp.content_length().is_some_and(|n| n as usize > max_bytes) {
            return Err(UpstreamError::new(ErrorClass::Transient, Some(status), format!("the provider's answer is larger than {max_bytes} bytes")));
        }
        let body = resp.bytes().await.map_err(|e| {
            if e.is_timeout() {
                timeout("reading the answer")
            } else {
                UpstreamError::new(ErrorClass::Transient, Some(status), format!("reading the answer failed: {e}"))
            }
        })?;
        if body.len() > max_bytes {
            return Err(UpstreamError::new(ErrorClass::Transient, Some(status), format!("the provider's answer is larger than {max_bytes} bytes")));
        }
        Ok(Response { status, content_type, retry_after, body: body.to_vec() })
    }

    /// One deployment, to the end (polling and downloading for asynchronous providers).
    async fn attempt(&self, d: &MediaDeployment, req: &MediaRequest, upload: Option<&[u8]>, progress: &watch::Sender<Option<f32>>) -> Result<Vec<Output>, UpstreamError> {
        let key = (self.secret)(&d.api_key_env).ok_or_else(|| UpstreamError::new(ErrorClass::Auth, None, format!("{} is not set", d.api_key_env)))?;
        let target = MediaTarget { base_url: d.base_url.as_deref().unwrap_or(d.provider.default_base_url()), api_key: &key, model: &d.model, voice: d.voice.as_deref() };
        let q = &self.cfg.queue;
        let max = self.cfg.limits.max_result_bytes;
        let deadline = Instant::now() + Duration::from_millis(q.provider_timeout_ms);
        let r = self.send(providers::build(d.provider, target, req, upload), deadline, max).await?;
        match providers::parse(d.provider, req, r.status, &r.content_type, r.retry_after.as_deref(), &r.body)? {
            Answer::Done(out) => Ok(out),
            Answer::Task(task) => loop {
                tokio::time::sleep(Duration::from_millis(q.poll_interval_ms).min(deadline.saturating_duration_since(Instant::now()))).await;
                let poll = providers::poll(d.provider, target, &task).ok_or_else(|| UpstreamError::new(ErrorClass::Transient, None, "the provider cannot be polled"))?;
                let r = self.send(poll, deadline, 1 << 20).await?;
                match providers::parse_poll(d.provider, r.status, r.retry_after.as_deref(), &r.body)? {
                    TaskState::Pending { progress: p } => {
                        let _ = progress.send(p);
                    }
                    TaskState::Failed { reason } => return Err(UpstreamError::new(ErrorClass::Transient, None, format!("{}: {reason}", d.provider.as_str()))),
                    TaskState::Succeeded { urls } => {
                        let mut out = Vec::new();
                        for url in urls {
                            let r = self.send(providers::download(&url), deadline, max).await?;
                            if r.status != 200 || r.body.is_empty() {
                                return Err(UpstreamError::new(ErrorClass::Transient, Some(r.status), "downloading the output failed"));
                            }
                            out.push(Output { bytes: r.body, content_type: "video/mp4".into(), ext: "mp4" });
                        }
                        if out.is_empty() {
                            return Err(UpstreamError::new(ErrorClass::Transient, None, "the task succeeded without an output"));
                        }
                        return Ok(out);
                    }
                }
            },
        }
    }

    /// Runs `req` on its model's deployments: the driver picks each attempt (configured
    /// order, open breakers last, each deployment once); retrying later is the queue's.
    pub async fn run(&self, req: &MediaRequest, upload: Option<&[u8]>, progress: &watch::Sender<Option<f32>>) -> Result<Produced, Failure> {
        if self.cfg.model(req.model()).is_none() {
            return Err(Failure { reason: format!("no media model named {:?}", req.model()), retryable: false });
        }
        let plan = self.fleet.plan(self.cfg, req.model(), unix_ms());
        let n = plan.deployments.len().max(1) as u32;
        let q = &self.cfg.queue;
        let policy = RetryPolicy { max_attempts: n, max_attempts_per_deployment: 1, total_budget_ms: q.provider_timeout_ms.saturating_mul(n as u64), ..RetryPolicy::default() };
        let mut attempts = Attempts::new(self.fleet, plan, policy, unix_ms(), rand::random());
        let mut reasons = Vec::new();
        let mut retryable = false;
        let mut produced = None;
        loop {
            match attempts.next(unix_ms()) {
                Next::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Next::Go(turn) => {
                    let d = &self.cfg.deployments[turn.deployment];
                    match self.attempt(d, req, upload, progress).await {
                        Ok(outputs) => {
                            let n = outputs.len() as f64;
                            produced = Some(Produced { outputs, deployment: d.name.clone(), provider: d.provider.as_str(), provider_model: d.model.clone(), cost_usd: d.price_per_job_usd.map(|p| p * n) });
                            attempts.succeeded(unix_ms());
                        }
                        Err(e) => {
                            reasons.push(format!("{}: {}", d.name, e.message));
                            retryable |= e.class.retryable_later();
                            attempts.failed(e, unix_ms());
                        }
                    }
                    let events = attempts.take_events();
                    for e in events.iter().filter(|e| e.outcome == "breaker_open") {
                        reasons.push(format!("{}: its circuit breaker is open", e.deployment));
                        retryable = true;
                    }
                    crate::observability::attempts(&events, self.region);
                }
                Next::Done => return Ok(produced.expect("Done follows an answer")),
                Next::GiveUp(e) => {
                    // Deployments skipped for an open breaker on the way to this give-up.
                    let events = attempts.take_events();
                    for ev in events.iter().filter(|ev| ev.outcome == "breaker_open") {
                        reasons.push(format!("{}: its circuit breaker is open", ev.deployment));
                    }
                    crate::observability::attempts(&events, self.region);
                    retryable |= e.class.retryable_later();
                    // The same prompt would be refused anywhere, and again later.
                    let final_refusal = matches!(e.class, ErrorClass::ContentPolicy | ErrorClass::BadRequest);
                    if reasons.is_empty() {
                        reasons.push(e.message);
                    }
                    return Err(Failure { reason: reasons.join("; "), retryable: retryable && !final_refusal });
                }
            }
        }
    }
}
