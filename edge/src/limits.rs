//! Step 5: rate limits and budget, reserved in the tenant's `RateLimiter` Durable Object
//! before the call and settled with real usage after it.

use meridian_shared::api::GatewayError;
use meridian_shared::ratelimit::{month_of, LimitHeaders, ReserveOutcome, ReserveRequest, TenantLimits};
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

fn has_limits(l: &TenantLimits) -> bool {
    l.requests_per_minute.is_some() || l.requests_per_minute_per_key.is_some() || l.tokens_per_minute.is_some() || l.monthly_budget_usd.is_some() || !l.models.is_empty()
}

pub fn headers(h: &LimitHeaders) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    let mut put = |k: &'static str, x: Option<u64>, ms: bool| {
        if let Some(x) = x {
            v.push((k, if ms { format!("{x}ms") } else { x.to_string() }));
        }
    };
    put("x-ratelimit-limit-requests", h.limit_requests, false);
    put("x-ratelimit-remaining-requests", h.remaining_requests, false);
    put("x-ratelimit-reset-requests", h.reset_requests_ms, true);
    put("x-ratelimit-limit-tokens", h.limit_tokens, false);
    put("x-ratelimit-remaining-tokens", h.remaining_tokens, false);
    put("x-ratelimit-reset-tokens", h.reset_tokens_ms, true);
    v
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

/// A refused call: the error and the `x-ratelimit-*` headers of the limit that refused it.
pub struct Refusal {
    pub error: GatewayError,
    pub headers: Vec<(&'static str, String)>,
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Self {
        Refusal { error, headers: Vec::new() }
    }
}

/// Reserves one call. `Ok((None, _))` when the tenant has no limits (no Durable Object trip).
pub async fn reserve(env: &Env, tenant: &str, limits: &TenantLimits, key: &str, model: &str, tokens: u64, cost_usd: f64) -> Result<(Option<Reservation>, Vec<(&'static str, String)>), Refusal> {
    if !has_limits(limits) {
        return Ok((None, Vec::new()));
    }
    let (month, ms_to_month_end) = month_of(now_ms());
    let request = ReserveRequest { key: key.to_string(), model: model.to_string(), estimated_tokens: tokens, estimated_cost_usd: cost_usd, month, ms_to_month_end };
    let text = call(env, tenant, "/reserve", json!({"limits": limits, "request": request})).await?;
    let outcome: ReserveOutcome = serde_json::from_str(&text).map_err(|e| GatewayError::Internal(format!("rate limiter answered {text:?}: {e}")))?;
    match outcome {
        ReserveOutcome::Admitted { reservation, headers: h } => Ok((Some(Reservation { tenant: tenant.to_string(), id: reservation, limits: limits.clone() }), headers(&h))),
        ReserveOutcome::Denied { retry_after_ms, reason, headers: h } => {
            Err(Refusal { error: GatewayError::RateLimited { message: reason, retry_after_secs: retry_after_ms.div_ceil(1000).max(1) }, headers: headers(&h) })
        }
    }
}

/// Replaces the reservation with real usage (zero for a failed call).
pub async fn settle(env: Env, r: Reservation, tokens: u64, cost_usd: f64) {
    let body = json!({"limits": r.limits, "reservation": r.id, "tokens": tokens, "cost_usd": cost_usd});
    if let Err(e) = call(&env, &r.tenant, "/settle", body).await {
        worker::console_error!("settling reservation {} failed: {e}", r.id);
    }
}
