//! `/internal/*` at the edge, for operators and the regions only (the shared internal
//! secret, never an API key):
//!
//! - `POST /internal/semantic-cache/import` `{tenant, entries: [{request, embedding, answer}]}`
//!   loads answers into a tenant's semantic cache (e.g. an FAQ, or entries moved from a
//!   region), scoped exactly as live requests are;
//! - `POST /internal/semantic-cache/stats` `{tenant}`: entries and bytes held;
//! - `POST /internal/tenant/purge` `{tenant}`: deletes the tenant's exact and semantic
//!   cache entries at the edge (tenant deletion).

use meridian_shared::api::{parse_json, GatewayError};
use meridian_shared::auth::internal::{secret_matches, HEADER};
use serde::Deserialize;
use worker::{Env, Request, Response};

use crate::respond::{self, Trace};
use crate::settings::Settings;
use crate::{cache, semantic};

/// Largest import body, and most entries in one.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_IMPORT_ENTRIES: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantOnly {
    tenant: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Import {
    tenant: String,
    entries: Vec<semantic::ImportEntry>,
}

pub async fn handle(mut req: Request, env: &Env, s: &Settings, trace: &Trace) -> Response {
    let presented = req.headers().get(HEADER).ok().flatten().unwrap_or_default();
    if !secret_matches(s.internal_secret.as_deref(), &presented) {
        return respond::error(&GatewayError::Unauthenticated("invalid internal credentials".into()), trace.headers());
    }
    let body = match req.bytes().await {
        Ok(b) if b.len() <= MAX_IMPORT_BYTES => b,
        Ok(_) => return respond::error(&GatewayError::PayloadTooLarge { limit: MAX_IMPORT_BYTES }, trace.headers()),
        Err(e) => return respond::error(&GatewayError::invalid(e.to_string()), trace.headers()),
    };
    let result = match req.path().as_str() {
        "/internal/semantic-cache/import" => import(env, s, &body).await,
        "/internal/semantic-cache/stats" => match tenant(s, &body) {
            Ok(t) => semantic::stats(env, &t).await.map_err(GatewayError::Unavailable),
            Err(e) => Err(e),
        },
        "/internal/tenant/purge" => match tenant(s, &body) {
            Ok(t) => purge(env, &t).await,
            Err(e) => Err(e),
        },
        other => Err(GatewayError::NotFound(format!("no route for {other}"))),
    };
    match result {
        Ok(json) => respond::json(200, json.into_bytes(), trace.headers()),
        Err(e) => respond::error(&e, trace.headers()),
    }
}

fn known(s: &Settings, id: &str) -> Result<String, GatewayError> {
    s.tenant(id).map(|t| t.id.clone()).ok_or_else(|| GatewayError::invalid_param(format!("unknown tenant {id:?}"), "tenant"))
}

fn tenant(s: &Settings, body: &[u8]) -> Result<String, GatewayError> {
    known(s, &parse_json::<TenantOnly>(body)?.tenant)
}

async fn import(env: &Env, s: &Settings, body: &[u8]) -> Result<String, GatewayError> {
    let i: Import = parse_json(body)?;
    let tenant = known(s, &i.tenant)?;
    if i.entries.is_empty() || i.entries.len() > MAX_IMPORT_ENTRIES {
        return Err(GatewayError::invalid_param(format!("entries must hold 1 to {MAX_IMPORT_ENTRIES} items"), "entries"));
    }
    semantic::import(env, s, &tenant, i.entries).await
}

async fn purge(env: &Env, tenant: &str) -> Result<String, GatewayError> {
    semantic::purge(env, tenant).await.map_err(GatewayError::Unavailable)?;
    cache::purge(env, tenant).await.map_err(GatewayError::Unavailable)?;
    Ok(format!("{{\"purged\":{tenant:?}}}"))
}
