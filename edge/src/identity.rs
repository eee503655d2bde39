//! Step 3: who is calling. `Authorization: Bearer` carries either an API key (looked up
//! by SHA-256 digest in the config, else — a key issued at runtime — resolved through its
//! home region and cached for `control.key_cache_ms`) or a JWT (verified by the core's policy against the HMAC secret or
//! the JWKS, fetched and cached in isolate memory, refreshed on an unknown `kid`).

use std::cell::RefCell;

use jsonwebtoken::jwk::JwkSet;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::jwt::{self, CachedJwks, JwtError};
use meridian_shared::auth::{bearer_token, hash_api_key, key_region, Principal};
use meridian_shared::control::key_cache::{KeyCache, ResolvedKey};
use worker::{Fetch, Request};

use crate::clock::now_ms;
use crate::settings::Settings;

thread_local! {
    static JWKS: RefCell<Option<CachedJwks>> = const { RefCell::new(None) };
    /// Runtime-issued keys this isolate resolved through their home region.
    static KEYS: RefCell<Option<KeyCache>> = const { RefCell::new(None) };
}

/// A key issued at runtime: known to its home region only (the key names it). The
/// answer — found or not — is trusted for `control.key_cache_ms`; a region that cannot
/// be reached is a 503 (an outage is not a bad key), never cached.
async fn issued_key(s: &Settings, token: &str) -> Result<Principal, GatewayError> {
    let invalid = || unauthenticated("invalid API key");
    let region = key_region(token).ok_or_else(invalid)?;
    let digest = hash_api_key(token);
    let now = now_ms();
    let cached = KEYS.with(|c| c.borrow().as_ref().and_then(|k| k.get(&digest, now)));
    let found = match cached {
        Some(found) => found,
        None => {
            let (status, body) = crate::region::post_internal(s, region, "keys/resolve", serde_json::json!({"sha256": digest.to_hex()}).to_string())
                .await
                .map_err(|e| GatewayError::Unavailable(format!("the key's home region ({}) cannot be reached to check it: {e}", region.as_str())))?;
            let found = match status {
                200 => Some(serde_json::from_str::<ResolvedKey>(&body).map_err(|e| GatewayError::Unavailable(format!("the key's home region answered {body:?}: {e}")))?),
                404 => None,
                other => return Err(GatewayError::Unavailable(format!("the key's home region ({}) could not check it ({other})", region.as_str()))),
            };
            let c = s.config.control;
            KEYS.with(|k| k.borrow_mut().get_or_insert_with(|| KeyCache::new(c.key_cache_ms, c.max_cached_keys)).put(digest, found.clone(), now));
            found
        }
    };
    let k = found.ok_or_else(invalid)?;
    s.tenant(&k.tenant).filter(|t| t.region == region).map(|t| t.principal(&k.key_name, k.roles)).ok_or_else(invalid)
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
    if let Some(set) = JWKS.with(|c| c.borrow().as_ref().filter(|j| j.serves(token, now, ttl_ms)).map(|j| j.set.clone())) {
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
        if let Some(p) = s.principal_for_key(&hash_api_key(&token)) {
            return Ok(p.clone());
        }
        return issued_key(s, &token).await;
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
