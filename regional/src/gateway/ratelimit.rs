//! Step 5: requests per minute per API key. The limiter is a trait so a shared store
//! (Redis, a Durable Object) can replace this process-local one without touching callers.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::Principal;
use meridian_shared::ratelimit::{Decision, Gcra};

use crate::http::error::ApiError;
use crate::state::SharedState;

pub trait RateLimiter: Send + Sync {
    fn check(&self, key: &str, cost: u64, now_ms: u64) -> Decision;
    fn limit(&self) -> u64;
}

/// GCRA over a process-local map: exact within one process.
pub struct InMemoryLimiter {
    gcra: Gcra,
    tats: Mutex<HashMap<String, f64>>,
}

impl InMemoryLimiter {
    pub fn new(limit: u64, period_ms: u64) -> Self {
        InMemoryLimiter { gcra: Gcra::new(limit, period_ms), tats: Mutex::new(HashMap::new()) }
    }
}

impl RateLimiter for InMemoryLimiter {
    fn check(&self, key: &str, cost: u64, now_ms: u64) -> Decision {
        let mut tats = self.tats.lock().unwrap();
        let d = self.gcra.check(tats.get(key).copied(), now_ms, cost);
        if let Decision::Allow { new_tat_ms, .. } = d {
            tats.insert(key.to_string(), new_tat_ms);
        }
        d
    }

    fn limit(&self) -> u64 {
        self.gcra.limit()
    }
}

pub async fn layer(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    let Some(p) = req.extensions().get::<Principal>() else { return next.run(req).await };
    let key = format!("{}/{}", p.tenant, p.key_name);
    let limit = st.limiter.limit().to_string();
    match st.limiter.check(&key, 1, st.now_ms()) {
        Decision::Allow { remaining, reset_ms, .. } => {
            let mut resp = next.run(req).await;
            let h = resp.headers_mut();
            h.insert("x-ratelimit-limit-requests", HeaderValue::from_str(&limit).unwrap());
            h.insert("x-ratelimit-remaining-requests", HeaderValue::from(remaining));
            h.insert("x-ratelimit-reset-requests", HeaderValue::from_str(&format!("{reset_ms}ms")).unwrap());
            resp
        }
        Decision::Deny { retry_after_ms, reset_ms } => {
            let err = GatewayError::RateLimited {
                message: format!("rate limit of {limit} requests per minute reached for this API key"),
                retry_after_secs: retry_after_ms.div_ceil(1000),
            };
            ApiError::from(err)
                .with_headers(vec![
                    ("x-ratelimit-limit-requests", limit),
                    ("x-ratelimit-remaining-requests", "0".into()),
                    ("x-ratelimit-reset-requests", format!("{reset_ms}ms")),
                ])
                .into_response()
        }
    }
}
