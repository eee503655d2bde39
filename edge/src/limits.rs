//! Step 5: rate limits and budget, reserved in the tenant's `RateLimiter` Durable Object
//! before the call and settled with real usage after it.

use meridian_shared::api::GatewayError;
use meridian_shared::ratelimit::{Refusal, ReserveOutcome, ReserveRequest, TenantLimits};
use serde_json::json;
use worker::{Env, Method, Request, RequestInit};

use crate::clock::now_ms;

pub const BINDING: &str = "RATE_LIMITER";

/// An admitted call's reservation, to settle afterwards.
pub struct Reservation {
    pub tenant: String,
    pub id: u64,
    pub limits: TenantLimits,
}

async fn call(env: &Env, tenant: &str, path: &str, body: serde_json::Value) -> Result<String, GatewayError> {
    let unavailable = |e: worker::Error| GatewayError::Unavailable(format!("rate limiter unavailable: {e}"));
    let stub = env.durable_object(BINDING).and_then(|ns| ns.id_from_name(tenant)?.get_stub()).map_err(unavailable)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.to_string().into()));
    let req = Request::new_with_init(&format!("https://rate-limiter{path}"), &init).map_err(unavailable)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
    resp.text().await.map_err(unavailable)
}

/// Reserves one call. `Ok((None, _))` when the tenant has no limits (no Durable Object trip).
pub async fn reserve(env: &Env, tenant: &str, limits: &TenantLimits, key: &str, model: &str, tokens: u64, cost_usd: f64) -> Result<(Option<Reservation>, Vec<(&'static str, String)>), Refusal> {
    if limits.is_empty() {
        return Ok((None, Vec::new()));
    }
    let request = ReserveRequest::new(key, model, tokens, cost_usd, now_ms());
    let text = call(env, tenant, "/reserve", json!({"limits": limits, "request": request})).await?;
    let outcome: ReserveOutcome = serde_json::from_str(&text).map_err(|e| GatewayError::Internal(format!("rate limiter answered {text:?}: {e}")))?;
    let (id, headers) = outcome.admitted()?;
    Ok((Some(Reservation { tenant: tenant.to_string(), id, limits: limits.clone() }), headers))
}

/// Replaces the reservation with real usage (zero for a failed call).
pub async fn settle(env: Env, r: Reservation, tokens: u64, cost_usd: f64) {
    let body = json!({"limits": r.limits, "reservation": r.id, "tokens": tokens, "cost_usd": cost_usd});
    if let Err(e) = call(&env, &r.tenant, "/settle", body).await {
        worker::console_error!("settling reservation {} failed: {e}", r.id);
    }
}
