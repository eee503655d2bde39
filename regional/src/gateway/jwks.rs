//! The JWT issuer's key set (`jwt.jwks_url`), fetched with reqwest and kept in process
//! memory by the core's policy (`auth::jwt::CachedJwks`): fresh for `jwt.jwks_cache_secs`,
//! refetched on an unknown `kid` at most every 10 s.

use std::sync::Mutex;
use std::time::Duration;

use meridian_shared::api::GatewayError;
use meridian_shared::auth::jwt::{CachedJwks, JwkSet};

use crate::clock::unix_ms;

#[derive(Default)]
pub struct Jwks {
    cached: Mutex<Option<CachedJwks>>,
}

impl Jwks {
    /// The set to verify `token` with.
    pub async fn for_token(&self, http: &reqwest::Client, url: &str, ttl_ms: u64, token: &str) -> Result<JwkSet, GatewayError> {
        let now = unix_ms();
        if let Some(set) = self.cached.lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|j| j.serves(token, now, ttl_ms)).map(|j| j.set.clone()) {
            return Ok(set);
        }
        let unavailable = |e: String| GatewayError::Unavailable(format!("could not fetch the JWKS: {e}"));
        let resp = http.get(url).timeout(Duration::from_secs(5)).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("the JWKS endpoint answered {}", resp.status())));
        }
        let set: JwkSet = resp.json().await.map_err(|e| unavailable(format!("the JWKS is not valid: {e}")))?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(CachedJwks { set: set.clone(), fetched_ms: now });
        Ok(set)
    }
}
