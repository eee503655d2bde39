//! Step 9 for non-streaming calls: the failover engine drives `fetch` attempts.

use meridian_shared::api::{ChatRequest, ChatResponse};
use meridian_shared::auth::Region;
use meridian_shared::failover::{Action, Engine, ErrorClass, Outcome, UpstreamError};
use meridian_shared::providers;
use meridian_shared::routing::ModelRoute;
use worker::Delay;

use crate::clock::{now_ms, random_f64};
use crate::respond::Trace;
use crate::settings::Settings;
use crate::upstream::{self, remaining};

async fn one(s: &Settings, req: &ChatRequest, d: usize, route: &str, deadline: u64) -> Result<ChatResponse, UpstreamError> {
    let dep = &s.router.deployments[d];
    let t = s.config.routes.get(route).copied().unwrap_or_default().timeouts;
    let up = providers::build_chat(dep.kind, dep.target(s.config.limits.default_max_tokens), req, false)
        .map_err(|e| UpstreamError::new(ErrorClass::BadRequest, None, e.to_string()))?;
    let mut resp = upstream::send(up, dep.kind, t.first_byte_ms, deadline).await?;
    let status = resp.status_code();
    let body = upstream::read_body(&mut resp, t.first_token_ms.min(remaining(deadline))).await?;
    providers::parse_chat(dep.kind, status, &[], &body, now_ms())
}

/// Returns the answer and the deployment that produced it, or the error to report.
pub async fn run(s: &Settings, req: &ChatRequest, model: &ModelRoute, region: Option<Region>, trace: &mut Trace) -> Result<(ChatResponse, usize), UpstreamError> {
    let route = s.config.routes.get(&model.route).copied().unwrap_or_default();
    let deadline = now_ms() + route.timeouts.total_ms;
    let mut engine = Engine::new(s.router.plan(model, region, now_ms(), random_f64(), random_f64()), route.policy(), now_ms());
    let mut action = engine.start();
    loop {
        match action {
            Action::Attempt { deployment: d, after_ms, attempt, .. } => {
                if after_ms > 0 {
                    Delay::from(std::time::Duration::from_millis(after_ms)).await;
                    trace.upstream_ms += after_ms as f64;
                }
                let dep = &s.router.deployments[d];
                trace.attempts = attempt;
                trace.deployment = Some(dep.name.clone());
                trace.provider = Some(dep.provider_name.clone());
                let t0 = now_ms();
                let result = if s.router.acquire(d, now_ms()) {
                    one(s, req, d, &model.route, deadline).await
                } else {
                    Err(UpstreamError::new(ErrorClass::Transient, None, format!("circuit breaker for {} is open", dep.name)))
                };
                let ms = now_ms().saturating_sub(t0) as f64;
                trace.upstream_ms += ms;
                match result {
                    Ok(r) => {
                        s.router.record_success(d, ms);
                        return Ok((r, d));
                    }
                    Err(e) => {
                        worker::console_warn!("attempt {attempt} on {} failed: {} ({})", dep.name, e.message, e.class.as_str());
                        s.router.record_failure(d, e.class, now_ms());
                        action = engine.on_outcome(Outcome::Failed(e), now_ms(), random_f64());
                    }
                }
            }
            Action::GiveUp(e) => return Err(e),
            Action::Done => unreachable!("Done only follows a reported success"),
        }
    }
}
