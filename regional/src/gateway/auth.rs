//! Step 3–4 of the request path: API key → principal (tenant, key, home region), and
//! refusal of tenants homed in another region.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{bearer_token, hash_api_key, Principal};

use super::error::ApiError;
use crate::state::SharedState;

/// Who the request is from: the edge vouching for a principal it authenticated
/// (`x-meridian-internal` + `x-meridian-tenant`/`-user`/`-roles`), or an API key.
fn identify(st: &SharedState, h: &axum::http::HeaderMap) -> Result<Principal, GatewayError> {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
    if let Some(secret) = get("x-meridian-internal") {
        if !st.is_internal(secret) {
            return Err(GatewayError::Unauthenticated("invalid internal credentials".into()));
        }
        let tenant = get("x-meridian-tenant").ok_or_else(|| GatewayError::invalid("forwarded request without x-meridian-tenant"))?;
        let roles = get("x-meridian-roles").map(|r| r.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect());
        return st.forwarded_principal(tenant, get("x-meridian-user").unwrap_or(""), roles).ok_or_else(|| GatewayError::Unauthenticated(format!("unknown tenant {tenant:?}")));
    }
    let token = get("authorization").and_then(bearer_token).or_else(|| get("x-api-key"));
    let Some(token) = token else {
        return Err(GatewayError::Unauthenticated("missing API key: send `Authorization: Bearer <key>`".into()));
    };
    st.principal(&hash_api_key(token)).cloned().ok_or_else(|| GatewayError::Unauthenticated("invalid API key".into()))
}

pub async fn layer(State(st): State<SharedState>, mut req: Request, next: Next) -> Response {
    let principal = match identify(&st, req.headers()) {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
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
    req.extensions_mut().insert(principal);
    next.run(req).await
}
