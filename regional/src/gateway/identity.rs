//! Identity: who the request is from — the edge vouching for a principal it
//! authenticated (`x-meridian-internal` + `x-meridian-tenant`/`-user`/`-roles`), or an
//! API key (from the config, or issued at runtime and resolved through
//! [`crate::control::resolve`]), or a JWT of the configured issuer (the core's policy, the
//! same as the edge's) — as a [`Principal`] in the request's extensions. Only API routes (those
//! [`RouteClass::of_path`] knows) carry one; operator routes have their own checks.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{bearer_token, hash_api_key, jwt, key_region, Principal, RouteClass};

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
    if looks_like_jwt(token) {
        return from_jwt(st, token).await;
    }
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

fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.matches('.').count() == 2
}

/// A JWT of the configured issuer, verified by the core's policy (the same as the edge's).
async fn from_jwt(st: &SharedState, token: &str) -> Result<Principal, GatewayError> {
    let cfg = st.config.jwt.as_ref().ok_or_else(|| GatewayError::Unauthenticated("this gateway does not accept JWTs".into()))?;
    let jwks = match &cfg.jwks_url {
        Some(url) => Some(st.jwks.for_token(st.client("default"), url, cfg.jwks_cache_secs * 1000, token).await?),
        None => None,
    };
    let claims = jwt::verify(token, cfg, st.jwt_hmac.as_deref(), jwks.as_ref(), crate::clock::unix_secs()).map_err(|e| GatewayError::Unauthenticated(format!("invalid token: {e}")))?;
    let t = st.config.tenant(&claims.tenant).ok_or_else(|| GatewayError::Unauthenticated(format!("invalid token: unknown tenant {:?}", claims.tenant)))?;
    Ok(t.principal(&claims.subject, Some(claims.roles)))
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
