//! Step 6b at the edge: the semantic response cache, after the exact cache and before the
//! providers. Policy (scope, threshold, guard) is `meridian_shared::cache::semantic`, the
//! same as the regions'; the store is the tenant's `SemanticCache` Durable Object.
//!
//! The last user turn is embedded by the tenant's **home region** (`POST
//! /internal/embed`, the tenant's local model, Redis-cached there): the text goes only
//! where the tenant's data may go. If the region cannot answer, the lookup is a miss and
//! nothing is stored — never an error. A miss carries what is needed to store the answer
//! once it is complete (a truncated stream is never stored).

pub mod wire;

use meridian_shared::api::{ChatRequest, GatewayError};
use meridian_shared::auth::Principal;
use meridian_shared::cache::semantic::{applies, effective_threshold, scope, tenant_policy, Lookup};
use meridian_shared::cache::{CachedAnswer, Mode};
use serde::Deserialize;
use serde_json::json;
use worker::{Env, Method, Request, RequestInit};

use crate::clock::now_ms;
use crate::respond::Trace;
use crate::settings::Settings;
use wire::{Found, Limits, LookupRequest, StoreRequest};

pub const BINDING: &str = "SEMANTIC_CACHE";

/// What a miss needs to store the answer later.
pub struct StoreLater {
    pub tenant: String,
    pub scope: String,
    pub question: String,
    pub embedding: Vec<f32>,
}

pub enum HitOrMiss {
    Hit {
        answer: CachedAnswer,
        similarity: f32,
        age_s: u64,
    },
    /// Go to the providers; store the answer when `pending` is `Some`. `lookup` is what
    /// the cache found, for the usage event's telemetry.
    Miss {
        pending: Option<StoreLater>,
        lookup: Option<Lookup>,
    },
}

impl HitOrMiss {
    fn skip() -> HitOrMiss {
        HitOrMiss::Miss { pending: None, lookup: None }
    }
}

fn limits(s: &Settings) -> Limits {
    let c = &s.config.semantic_cache;
    Limits { max_entries: c.max_entries_per_tenant as usize, ttl_s: c.ttl_secs }
}

async fn call(env: &Env, tenant: &str, path: &str, body: String) -> worker::Result<String> {
    let stub = env.durable_object(BINDING)?.id_from_name(tenant)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut r = stub.fetch_with_request(Request::new_with_init(&format!("https://semantic{path}"), &init)?).await?;
    let text = r.text().await?;
    if r.status_code() != 200 {
        return Err(worker::Error::RustError(format!("semantic cache {path}: {} {text}", r.status_code())));
    }
    Ok(text)
}

#[derive(Deserialize)]
struct Embedded {
    vectors: Vec<Vec<f32>>,
}

/// The query vectors of `texts` by the tenant's model, computed in its home region.
pub async fn embed(s: &Settings, p: &Principal, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
    let (status, body) = crate::region::post_internal(s, p.home_region, "embed", json!({"tenant": p.tenant, "texts": texts}).to_string()).await?;
    if status != 200 {
        return Err(format!("home region answered {status}: {body}"));
    }
    let e: Embedded = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    if e.vectors.len() != texts.len() {
        return Err("home region returned the wrong number of vectors".into());
    }
    Ok(e.vectors)
}

/// The scope and the question of a request, if it has one, and the tenant's threshold.
fn scoped(s: &Settings, tenant: &str, chat: &ChatRequest) -> Option<(String, String, f32)> {
    let (model, threshold) = tenant_policy(&s.config.semantic_cache, s.tenant(tenant));
    let (key, question) = scope(tenant, chat, model)?;
    Some((key, question, threshold))
}

/// Looks the request up; every failure of the cache itself is a miss, never an error.
/// The time spent embedding and in the object goes to `trace` (`Server-Timing`).
pub async fn lookup(env: &Env, s: &Settings, p: &Principal, chat: &ChatRequest, mode: Mode, requested: Option<f32>, trace: &mut Trace) -> HitOrMiss {
    let cfg = s.config.semantic_cache;
    if !applies(&cfg, mode, chat) {
        return HitOrMiss::skip();
    }
    let Some((scope_key, question, tenant_threshold)) = scoped(s, &p.tenant, chat) else { return HitOrMiss::skip() };
    let started = now_ms();
    let embedded = embed(s, p, std::slice::from_ref(&question)).await;
    let embed_ms = now_ms() - started;
    trace.semantic_ms = Some((embed_ms, 0));
    let embedding = match embedded {
        Ok(mut v) => v.remove(0),
        Err(e) => {
            worker::console_error!("semantic cache: embedding failed, treated as a miss: {e}");
            return HitOrMiss::skip();
        }
    };
    let pending = StoreLater { tenant: p.tenant.clone(), scope: scope_key, question, embedding };
    if mode == Mode::Refresh {
        return HitOrMiss::Miss { pending: Some(pending), lookup: None };
    }
    let req = LookupRequest {
        scope: pending.scope.clone(),
        question: pending.question.clone(),
        embedding: pending.embedding.clone(),
        threshold: effective_threshold(tenant_threshold, requested),
        guard: cfg.guard,
        limits: limits(s),
    };
    let started = now_ms();
    let found = match serde_json::to_string(&req) {
        Ok(body) => call(env, &p.tenant, "/lookup", body).await.and_then(|t| serde_json::from_str::<Found>(&t).map_err(|e| worker::Error::RustError(e.to_string()))),
        Err(e) => Err(e.into()),
    };
    trace.semantic_ms = Some((embed_ms, now_ms() - started));
    match found {
        Ok(Found::Hit { answer, similarity, age_s }) => HitOrMiss::Hit { answer, similarity, age_s },
        Ok(Found::Miss(l)) => HitOrMiss::Miss { pending: Some(pending), lookup: Some(l) },
        Err(e) => {
            worker::console_error!("semantic cache lookup failed, treated as a miss: {e}");
            HitOrMiss::Miss { pending: Some(pending), lookup: None }
        }
    }
}

/// Stores a complete answer (the caller has sent or is sending it).
pub async fn store(env: Env, s: &Settings, pending: StoreLater, answer: CachedAnswer) {
    let entry = StoreRequest { scope: pending.scope, question: pending.question, embedding: pending.embedding, answer };
    let body = match serde_json::to_string(&(vec![entry], limits(s))) {
        Ok(b) => b,
        Err(e) => return worker::console_error!("semantic cache store: {e}"),
    };
    if let Err(e) = call(&env, &pending.tenant, "/store", body).await {
        worker::console_error!("semantic cache store failed: {e}");
    }
}

/// Entries as an operator loads them (`POST /internal/semantic-cache/import`): a request
/// the answer belongs to, and the question's embedding by the tenant's model (as
/// `/internal/embed` of its home region returns it).
#[derive(Deserialize)]
pub struct ImportEntry {
    pub request: ChatRequest,
    pub embedding: Vec<f32>,
    pub answer: meridian_shared::api::ChatResponse,
}

/// Most dimensions an imported embedding may have.
pub const MAX_DIMS: usize = 4096;

/// Stores imported entries for `tenant` (scoped exactly as live requests are); returns
/// the tenant's entry count. Bad entries are refused (400) before anything is stored.
pub async fn import(env: &Env, s: &Settings, tenant: &str, entries: Vec<ImportEntry>) -> Result<String, GatewayError> {
    let dims = entries.first().map_or(0, |e| e.embedding.len());
    if dims == 0 || dims > MAX_DIMS || entries.iter().any(|e| e.embedding.len() != dims || e.embedding.iter().any(|x| !x.is_finite())) {
        return Err(GatewayError::invalid_param(format!("every embedding must have the same 1 to {MAX_DIMS} finite dimensions"), "entries"));
    }
    let now = now_ms() / 1000;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let (scope, question, _) = scoped(s, tenant, &e.request).ok_or_else(|| GatewayError::invalid_param("every request must end with a non-empty user turn", "entries"))?;
        out.push(StoreRequest { scope, question, embedding: e.embedding, answer: CachedAnswer { response: e.answer, stored_at: now } });
    }
    let body = serde_json::to_string(&(out, limits(s))).map_err(|e| GatewayError::Internal(e.to_string()))?;
    call(env, tenant, "/store", body).await.map_err(|e| GatewayError::Unavailable(format!("the tenant's semantic cache: {e}")))
}

/// The tenant's cache size (`POST /internal/semantic-cache/stats`).
pub async fn stats(env: &Env, tenant: &str) -> Result<String, String> {
    call(env, tenant, "/stats", String::new()).await.map_err(|e| e.to_string())
}

/// Drops all of the tenant's entries (tenant deletion).
pub async fn purge(env: &Env, tenant: &str) -> Result<String, String> {
    call(env, tenant, "/purge", String::new()).await.map_err(|e| e.to_string())
}
