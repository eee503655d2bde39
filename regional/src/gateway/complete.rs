//! Step 9 for non-streaming requests: the failover engine drives attempts until one
//! returns a whole, parsed response.

use std::time::{Duration, Instant};

use meridian_shared::api::{ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse};
use meridian_shared::failover::{Action, Engine, ErrorClass, Outcome, UpstreamError};
use meridian_shared::providers::{self, UpstreamRequest};
use tracing::Instrument;

use super::attempt::{self, remaining, unix_ms};
use meridian_shared::api::GatewayError;

use super::error::ApiError;
use super::headers::Trace;
use meridian_shared::routing::ModelRoute;
use crate::state::AppState;

/// Largest provider response body accepted.
const MAX_RESPONSE_BODY: usize = 32 * 1024 * 1024;

/// What one kind of call needs from its provider: the request and the parser.
pub trait Call {
    type Output;
    fn build(&self, st: &AppState, deployment: usize) -> Result<UpstreamRequest, UpstreamError>;
    fn parse(&self, st: &AppState, deployment: usize, status: u16, body: &[u8]) -> Result<Self::Output, UpstreamError>;
}

pub struct Chat<'a>(pub &'a ChatRequest);

impl Call for Chat<'_> {
    type Output = ChatResponse;

    fn build(&self, st: &AppState, d: usize) -> Result<UpstreamRequest, UpstreamError> {
        let dep = &st.router.deployments[d];
        providers::build_chat(dep.kind, dep.target(st.config.limits.default_max_tokens), self.0, false)
            .map_err(|e| UpstreamError::new(ErrorClass::BadRequest, None, e.to_string()))
    }

    fn parse(&self, st: &AppState, d: usize, status: u16, body: &[u8]) -> Result<ChatResponse, UpstreamError> {
        providers::parse_chat(st.router.deployments[d].kind, status, &[], body, unix_ms())
    }
}

pub struct Embed<'a>(pub &'a EmbeddingsRequest);

impl Call for Embed<'_> {
    type Output = EmbeddingsResponse;

    fn build(&self, st: &AppState, d: usize) -> Result<UpstreamRequest, UpstreamError> {
        let dep = &st.router.deployments[d];
        providers::build_embeddings(dep.kind, dep.target(st.config.limits.default_max_tokens), self.0)
            .map_err(|e| UpstreamError::new(ErrorClass::BadRequest, None, e.to_string()))
    }

    fn parse(&self, st: &AppState, d: usize, status: u16, body: &[u8]) -> Result<EmbeddingsResponse, UpstreamError> {
        providers::parse_embeddings(st.router.deployments[d].kind, status, &[], body, unix_ms())
    }
}

async fn one_attempt<C: Call>(st: &AppState, call: &C, d: usize, route: &str, deadline: Instant) -> Result<C::Output, UpstreamError> {
    let t = st.route(route).timeouts;
    let up = call.build(st, d)?;
    let kind = st.router.deployments[d].kind;
    let resp = attempt::send(st.client(route), kind, up, Duration::from_millis(t.first_byte_ms), deadline, unix_ms()).await?;
    let status = resp.status().as_u16();
    let body = attempt::read_bounded(resp, MAX_RESPONSE_BODY, Duration::from_millis(t.first_token_ms).min(remaining(deadline))).await?;
    call.parse(st, d, status, &body)
}

/// Runs the failover loop for a non-streaming call. Returns the output and the
/// deployment that produced it.
pub async fn run<C: Call>(st: &AppState, call: &C, model: &ModelRoute, tenant_region: Option<meridian_shared::auth::Region>, trace: &mut Trace) -> Result<(C::Output, usize), ApiError> {
    let route = st.route(&model.route);
    let deadline = Instant::now() + Duration::from_millis(route.timeouts.total_ms);
    let plan = st.router.plan(model, tenant_region, st.now_ms(), rand::random(), rand::random());
    let mut engine = Engine::new(plan, route.policy(), st.now_ms());
    let mut action = engine.start();
    loop {
        match action {
            Action::Attempt { deployment: d, after_ms, attempt, .. } => {
                if after_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    trace.upstream_ms += after_ms as f64;
                }
                trace.attempts = attempt;
                if attempt > 1 {
                    metrics::counter!("meridian_retries_total", "route" => model.route.clone()).increment(1);
                }
                let dep = &st.router.deployments[d];
                let span = tracing::info_span!("attempt", attempt, deployment = %dep.name, provider = dep.kind.as_str());
                let t0 = Instant::now();
                let result = if st.router.acquire(d, st.now_ms()) {
                    one_attempt(st, call, d, &model.route, deadline).instrument(span.clone()).await
                } else {
                    Err(UpstreamError::new(ErrorClass::Transient, None, format!("circuit breaker for {} is open", dep.name)))
                };
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                trace.upstream_ms += ms;
                metrics::histogram!("meridian_provider_latency_seconds", "deployment" => dep.name.clone()).record(ms / 1000.0);
                trace.deployment = Some(dep.name.clone());
                trace.provider = Some(dep.provider_name.clone());
                match result {
                    Ok(out) => {
                        crate::observability::breaker_gauge(dep, st.router.record_success(d, ms));
                        return Ok((out, d));
                    }
                    Err(e) => {
                        span.in_scope(|| tracing::warn!(class = e.class.as_str(), status = e.status, error = %e.message, "attempt failed"));
                        metrics::counter!("meridian_attempt_failures_total", "deployment" => dep.name.clone(), "class" => e.class.as_str()).increment(1);
                        crate::observability::breaker_gauge(dep, st.router.record_failure(d, e.class, st.now_ms()));
                        action = engine.on_outcome(Outcome::Failed(e), st.now_ms(), rand::random());
                    }
                }
            }
            Action::GiveUp(e) => return Err(ApiError::from(GatewayError::from_upstream(&e)).with_headers(trace.headers())),
            Action::Done => unreachable!("Done only follows a reported success"),
        }
    }
}
