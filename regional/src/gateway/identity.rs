//! Identity: who the request is from — the edge vouching for a principal it
//! authenticated (`x-meridian-internal` + `x-meridian-tenant`/`-user`/`-roles`), or an
//! API key — as a [`Principal`] in the request's extensions. Only API routes (those
//! [`RouteClass::of_path`] knows) carry one; operator routes have their own checks.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{bearer_token, hash_api_key, Principal, RouteClass};

use crate::http::error::ApiError;
use crate::state::SharedState;

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
    if RouteClass::of_path(req.uri().path()).is_none() {
        return next.run(req).await;
    }
    match identify(&st, req.headers()) {
        Ok(p) => {
            tracing::Span::current().record("tenant", p.tenant.as_str());
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
