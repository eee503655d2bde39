//! Step 3–4 of the request path: API key → principal (tenant, key, home region), and
//! refusal of tenants homed in another region.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{bearer_token, hash_api_key};

use super::error::ApiError;
use crate::state::SharedState;

pub async fn layer(State(st): State<SharedState>, mut req: Request, next: Next) -> Response {
    let h = req.headers();
    let token = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()));
    let Some(token) = token else {
        return ApiError::from(GatewayError::Unauthenticated("missing API key: send `Authorization: Bearer <key>`".into())).into_response();
    };
    let Some(principal) = st.principal(&hash_api_key(token)) else {
        return ApiError::from(GatewayError::Unauthenticated("invalid API key".into())).into_response();
    };
    if principal.home_region != st.config.server.region {
        let msg = format!(
            "tenant {} is homed in region {}; this backend serves region {} and does not process its data",
            principal.tenant,
            principal.home_region.as_str(),
            st.config.server.region.as_str()
        );
        return ApiError::from(GatewayError::Forbidden(msg)).into_response();
    }
    tracing::Span::current().record("tenant", principal.tenant.as_str());
    req.extensions_mut().insert(principal.clone());
    next.run(req).await
}
