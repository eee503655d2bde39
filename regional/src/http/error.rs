//! Every error leaves the gateway in OpenAI's envelope with the right status.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;

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
