//! Every error leaves the gateway in OpenAI's envelope with the right status.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::failover::{ErrorClass, UpstreamError};

/// A [`GatewayError`] plus any headers it should carry (`Retry-After`, `x-meridian-*`).
#[derive(Debug)]
pub struct ApiError {
    pub error: GatewayError,
    pub headers: Vec<(&'static str, String)>,
}

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        ApiError { error, headers: Vec::new() }
    }
}

impl ApiError {
    pub fn with_headers(mut self, h: Vec<(&'static str, String)>) -> Self {
        self.headers.extend(h);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, [("content-type", "application/json")], self.error.to_json()).into_response();
        if let GatewayError::RateLimited { retry_after_secs, .. } = &self.error {
            resp.headers_mut().insert("retry-after", HeaderValue::from(*retry_after_secs));
        }
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(HeaderName::from_static(k), v);
            }
        }
        resp
    }
}

/// What the client sees when every attempt failed: the provider's reason, with a
/// status that says whose fault it is.
pub fn from_upstream(e: &UpstreamError) -> GatewayError {
    let who = |m: &str| format!("{m}: {}", e.message);
    match e.class {
        ErrorClass::BadRequest => GatewayError::InvalidRequest { message: who("the provider rejected the request"), param: None, code: None },
        ErrorClass::ContextLength => GatewayError::ContextLengthExceeded { message: e.message.clone() },
        ErrorClass::ContentPolicy => GatewayError::ContentPolicy { message: who("the provider refused the content") },
        ErrorClass::RateLimited { retry_after_ms } => GatewayError::RateLimited {
            message: who("every deployment for this model is rate limited"),
            retry_after_secs: retry_after_ms.map(|ms| ms.div_ceil(1000)).unwrap_or(1),
        },
        ErrorClass::Timeout(k) => GatewayError::Timeout(format!("the provider did not answer in time ({} timeout): {}", k.as_str(), e.message)),
        ErrorClass::Auth | ErrorClass::NotFound => GatewayError::Upstream { status: 502, message: who("the gateway's provider credentials or deployment are misconfigured") },
        ErrorClass::Transient | ErrorClass::StreamBroken { .. } => GatewayError::Upstream { status: 502, message: who("the provider failed") },
    }
}
