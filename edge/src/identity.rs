//! Step 3: who is calling. `Authorization: Bearer` carries either an API key (looked up
//! by SHA-256 digest) or a JWT (verified by the core's policy against the HMAC secret or
//! the JWKS, fetched and cached in isolate memory, refreshed on an unknown `kid`).

use std::cell::RefCell;

use jsonwebtoken::jwk::JwkSet;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::jwt::{self, JwtError};
use meridian_shared::auth::{bearer_token, hash_api_key, Principal};
use worker::{Fetch, Request};

use crate::clock::now_ms;
use crate::settings::Settings;

/// A JWKS miss refetches at most this often, so random `kid`s cannot flood the IdP.
const JWKS_MIN_REFRESH_MS: u64 = 10_000;

struct CachedJwks {
    set: JwkSet,
    fetched_ms: u64,
}

thread_local! {
    static JWKS: RefCell<Option<CachedJwks>> = const { RefCell::new(None) };
}

fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.matches('.').count() == 2
}

async fn fetch_jwks(url: &str) -> Result<JwkSet, GatewayError> {
    let url = worker::Url::parse(url).map_err(|e| GatewayError::Internal(format!("jwt.jwks_url: {e}")))?;
    let mut resp = Fetch::Url(url).send().await.map_err(|e| GatewayError::Unavailable(format!("could not fetch the JWKS: {e}")))?;
    if resp.status_code() != 200 {
        return Err(GatewayError::Unavailable(format!("the JWKS endpoint answered {}", resp.status_code())));
    }
    let text = resp.text().await.map_err(|e| GatewayError::Unavailable(format!("could not read the JWKS: {e}")))?;
    serde_json::from_str(&text).map_err(|e| GatewayError::Unavailable(format!("the JWKS is not valid: {e}")))
}

/// The JWKS to verify `token` with: cached while fresh; refetched when stale, or when
/// the token names a `kid` the cached set lacks (key rotation).
async fn jwks_for(url: &str, ttl_ms: u64, token: &str) -> Result<JwkSet, GatewayError> {
    let now = now_ms();
    let kid = jwt::token_kid(token);
    let cached = JWKS.with(|c| {
        c.borrow().as_ref().map(|j| {
            let fresh = now.saturating_sub(j.fetched_ms) < ttl_ms;
            let has_kid = kid.as_deref().is_none_or(|k| j.set.find(k).is_some());
            let may_refresh = now.saturating_sub(j.fetched_ms) >= JWKS_MIN_REFRESH_MS;
            (j.set.clone(), fresh && (has_kid || !may_refresh))
        })
    });
    if let Some((set, true)) = cached {
        return Ok(set);
    }
    let set = fetch_jwks(url).await?;
    JWKS.with(|c| *c.borrow_mut() = Some(CachedJwks { set: set.clone(), fetched_ms: now }));
    Ok(set)
}

fn unauthenticated(msg: impl Into<String>) -> GatewayError {
    GatewayError::Unauthenticated(msg.into())
}

pub async fn authenticate(req: &Request, s: &Settings) -> Result<Principal, GatewayError> {
    let h = req.headers();
    let auth = h.get("authorization").ok().flatten();
    let token = auth.as_deref().and_then(bearer_token).map(str::to_string).or_else(|| h.get("x-api-key").ok().flatten());
    let Some(token) = token else {
        return Err(unauthenticated("missing credentials: send `Authorization: Bearer <API key or JWT>`"));
    };
    if !looks_like_jwt(&token) {
        return s.principal_for_key(&hash_api_key(&token)).cloned().ok_or_else(|| unauthenticated("invalid API key"));
    }
    let cfg = s.config.jwt.as_ref().ok_or_else(|| unauthenticated("this gateway does not accept JWTs"))?;
    let jwks = match &cfg.jwks_url {
        Some(url) => Some(jwks_for(url, cfg.jwks_cache_secs * 1000, &token).await?),
        None => None,
    };
    let claims = jwt::verify(&token, cfg, s.hmac_secret.as_deref(), jwks.as_ref(), now_ms() / 1000).map_err(|e: JwtError| unauthenticated(format!("invalid token: {e}")))?;
    let t = s.tenant(&claims.tenant).ok_or_else(|| unauthenticated(format!("invalid token: unknown tenant {:?}", claims.tenant)))?;
    Ok(t.principal(&claims.subject, Some(claims.roles)))
}
