//! Resolving a runtime-issued key to its principal: for this host's own identity layer
//! (keys not in the config) and for the edge (`POST /internal/keys/resolve`, internal
//! secret only). This host caches its answers — found or not — for
//! `control.key_cache_ms` (the bound on how late a revocation takes effect here, and on
//! how often a flood of random keys reaches PostgreSQL) and forgets them on any change
//! of a key it makes; the edge's questions are answered from PostgreSQL (the edge caches
//! for the same period, so its bound is one period, not two).

use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::ApiKeyDigest;
use meridian_shared::control::key_cache::{KeyCache, ResolvedKey};
use serde::Deserialize;
use serde_json::json;

use super::keys::KeyStore;
use crate::clock::unix_ms;
use crate::http::body;
use crate::http::error::ApiError;
use crate::state::SharedState;

/// The process's cache of resolved keys.
pub struct Resolver {
    cache: Mutex<KeyCache>,
}

impl Resolver {
    pub fn new(ttl_ms: u64, max_entries: usize) -> Self {
        Resolver { cache: Mutex::new(KeyCache::new(ttl_ms, max_entries)) }
    }

    /// The key behind `digest`: from the cache while fresh, else from PostgreSQL.
    pub async fn resolve(&self, st: &SharedState, digest: &ApiKeyDigest) -> Result<Option<ResolvedKey>, GatewayError> {
        if let Some(hit) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(digest, unix_ms()) {
            return Ok(hit);
        }
        let found = lookup(st, digest).await?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(*digest, found.clone(), unix_ms());
        Ok(found)
    }

    /// A key of this host's tenants changed: nothing cached about keys is trusted.
    pub fn forget(&self) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        *c = KeyCache::new(c.ttl_ms(), c.max_entries());
    }
}

/// The key behind `digest`, from PostgreSQL.
async fn lookup(st: &SharedState, digest: &ApiKeyDigest) -> Result<Option<ResolvedKey>, GatewayError> {
    let Some(dp) = st.data.as_deref() else { return Ok(None) };
    let found = (KeyStore { db: &dp.db, region: st.config.server.region }).resolve(digest).await.map_err(|e| {
        tracing::error!(error = %e, "key resolution failed");
        GatewayError::Unavailable("keys cannot be checked right now; try again".into())
    })?;
    metrics::counter!("meridian_key_resolutions_total", "outcome" => if found.is_some() { "found" } else { "unknown" }).increment(1);
    Ok(found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveRequest {
    /// Hex SHA-256 of the presented key.
    sha256: String,
}

/// `POST /internal/keys/resolve` — the edge asks about a key it has not seen.
pub async fn handle(State(st): State<SharedState>, headers: HeaderMap, req: Request) -> Response {
    let result = async {
        crate::internal::check(&st, &headers)?;
        let bytes = body::read_body(req.into_body(), 4 * 1024).await?;
        let r: ResolveRequest = body::parse_json(&bytes)?;
        let digest = ApiKeyDigest::from_hex(&r.sha256).ok_or_else(|| GatewayError::invalid_param("`sha256` must be 64 hex characters", "sha256"))?;
        lookup(&st, &digest).await
    }
    .await;
    match result {
        Ok(Some(k)) => Json(json!({"tenant": k.tenant, "key_name": k.key_name, "roles": k.roles, "region": st.region()})).into_response(),
        Ok(None) => ApiError::from(GatewayError::ResourceNotFound("no such key".into())).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
