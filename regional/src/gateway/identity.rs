//! Identity: who the request is from — the edge vouching for a principal it
//! authenticated (`x-meridian-internal` + `x-meridian-tenant`/`-user`/`-roles`), or an
//! API key (from the config, or issued at runtime and resolved through
//! [`crate::control::resolve`]) — as a [`Principal`] in the request's extensions. Only API routes (those
//! [`RouteClass::of_path`] knows) carry one; operator routes have their own checks.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{bearer_token, hash_api_key, key_region, Principal, RouteClass};

use crate::http::error::ApiError;
use crate::state::SharedState;

async fn identify(st: &SharedState, h: &axum::http::HeaderMap) -> Result<Principal, GatewayError> {
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
    let digest = hash_api_key(token);
    if let Some(p) = st.principal(&digest) {
        return Ok(p.clone());
    }
    // A key issued at runtime names its home region; only that region knows it.
    match key_region(token) {
        Some(r) if r == st.config.server.region => {
            let k = st.resolver.resolve(st, &digest).await?.ok_or_else(|| GatewayError::Unauthenticated("invalid API key".into()))?;
            st.config.tenant(&k.tenant).map(|t| t.principal(&k.key_name, k.roles)).ok_or_else(|| GatewayError::Unauthenticated("invalid API key".into()))
        }
        Some(r) => Err(GatewayError::Forbidden(format!("this key was issued by region {}; this backend serves region {} (call the edge, or that region)", r.as_str(), st.config.server.region.as_str()))),
        None => Err(GatewayError::Unauthenticated("invalid API key".into())),
    }
}

pub async fn layer(State(st): State<SharedState>, mut req: Request, next: Next) -> Response {
    if RouteClass::of_path(req.uri().path()).is_none() {
        return next.run(req).await;
    }
    match identify(&st, req.headers()).await {
        Ok(p) => {
            tracing::Span::current().record("tenant", p.tenant.as_str());
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
