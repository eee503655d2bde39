//! Liveness, readiness and the JSON 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_shared::api::GatewayError;
use serde_json::json;

use crate::http::error::ApiError;
use crate::state::SharedState;

pub async fn live() -> &'static str {
    "ok"
}

/// Ready when at least one deployment's breaker lets traffic through.
pub async fn ready(State(st): State<SharedState>) -> Response {
    let open: Vec<&str> = st.router.deployments.iter().enumerate().filter(|(i, _)| matches!(st.router.breaker_state(*i), meridian_shared::breaker::BreakerState::Open { .. })).map(|(_, d)| d.name.as_str()).collect();
    let ok = open.len() < st.router.deployments.len();
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"ready": ok, "region": st.config.server.region, "open_breakers": open}))).into_response()
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::from(GatewayError::NotFound(format!("no route for {}", uri.path()))).into_response()
}
