//! The rate-limit layer: requests per minute per API key, through the process's
//! [`crate::limiter::RateLimiter`]; `x-ratelimit-*` on every answer, 429 with
//! `Retry-After` when over.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::Principal;
use meridian_shared::ratelimit::Decision;

use crate::http::error::ApiError;
use crate::state::SharedState;

pub async fn layer(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    let Some(p) = req.extensions().get::<Principal>() else { return next.run(req).await };
    let key = format!("{}/{}", p.tenant, p.key_name);
    let limit = st.limiter.limit().to_string();
    match st.limiter.check(&key, 1, st.now_ms()) {
        Decision::Allow { remaining, reset_ms, .. } => {
            let mut resp = next.run(req).await;
            let h = resp.headers_mut();
            // The tenant's own limits, when they applied, are the ones a client must see.
            if !h.contains_key("x-ratelimit-limit-requests") {
                h.insert("x-ratelimit-limit-requests", HeaderValue::from_str(&limit).unwrap());
                h.insert("x-ratelimit-remaining-requests", HeaderValue::from(remaining));
                h.insert("x-ratelimit-reset-requests", HeaderValue::from_str(&format!("{reset_ms}ms")).unwrap());
            }
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
