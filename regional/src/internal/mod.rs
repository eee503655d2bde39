//! Endpoints only the edge calls, authenticated by the shared internal secret
//! (`x-meridian-internal`, compared in constant time): never reachable with an API key.

pub mod embed;

use axum::http::HeaderMap;
use meridian_shared::api::GatewayError;

use crate::state::SharedState;

/// Refuses a request that does not carry the internal secret.
pub fn check(st: &SharedState, headers: &HeaderMap) -> Result<(), GatewayError> {
    match headers.get("x-meridian-internal").and_then(|v| v.to_str().ok()) {
        Some(s) if st.is_internal(s) => Ok(()),
        _ => Err(GatewayError::Unauthenticated("invalid internal credentials".into())),
    }
}
