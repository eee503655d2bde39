//! The semantic cache on the regional chat path (policy in
//! `meridian_shared::cache::semantic`, store in [`super::store`]).
//!
//! A cacheable chat request's last user turn is embedded with the tenant's model and
//! matched against the tenant's cached questions in the same scope (model, system prompt,
//! conversation prefix, parameters, language, embedding model). A hit is served as JSON
//! or replayed as SSE with `x-meridian-cache: semantic; similarity=…; age=…`; a miss
//! carries what is needed to store the answer once it is complete. The nearest similarity
//! of every lookup is a metric, so operators can tune the threshold.
//!
//! `x-meridian-cache: bypass` skips the cache, `refresh` skips the read but stores;
//! `x-meridian-semantic-threshold: 0.97` raises the threshold for one request (it can
//! never lower it).

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use meridian_shared::api::ChatRequest;
use meridian_shared::auth::Principal;
use meridian_shared::cache::semantic::{applies, effective_threshold, scope, tenant_policy, Lookup, THRESHOLD_HEADER};
use meridian_shared::cache::{self, CachedAnswer, Mode};
use meridian_shared::usage::UsageEvent;

use crate::embed::Role;
use super::store::{Lookup as Found, SemanticCache};

use crate::gateway::headers::Trace;
use crate::state::SharedState;
use crate::usage;

/// What a miss needs to store the answer later.
pub struct StoreLater {
    tenant: String,
    scope: String,
    question: String,
    embedding: Vec<f32>,
}

pub enum HitOrMiss {
    /// Served from the cache.
    Hit(Response),
    /// Go to the providers; store the answer when `Some`.
    Miss(Option<StoreLater>),
}

/// Records one lookup (this region's, or the edge's from its usage event) as metrics:
/// the nearest similarity by outcome, and lookups by outcome.
pub fn record(tenant: &str, via: &str, l: &Lookup) {
    let kind = if l.outcome == "hit" { "hit" } else { "miss" };
    if let Some(s) = l.nearest {
        metrics::histogram!("meridian_semantic_cache_nearest_similarity", "tenant" => tenant.to_string(), "outcome" => kind, "via" => via.to_string()).record(f64::from(s));
    }
    metrics::counter!("meridian_semantic_cache_lookups_total", "tenant" => tenant.to_string(), "outcome" => l.outcome.clone(), "via" => via.to_string()).increment(1);
}

/// Looks the request up; every failure of the cache itself is a miss, never an error.
pub async fn lookup(st: &SharedState, p: &Principal, chat: &ChatRequest, headers: &HeaderMap, trace: &Trace) -> HitOrMiss {
    let cfg = st.config.semantic_cache;
    let mode = Mode::from_header(headers.get(cache::mode::HEADER).and_then(|v| v.to_str().ok()));
    let Some(dp) = st.data.as_deref() else { return HitOrMiss::Miss(None) };
    if !applies(&cfg, mode, chat) {
        return HitOrMiss::Miss(None);
    }
    let (model, tenant_threshold) = tenant_policy(&cfg, st.config.tenant(&p.tenant));
    let Some((scope_key, question)) = scope(&p.tenant, chat, model) else { return HitOrMiss::Miss(None) };
    let embedding = match dp.embedder.embed(&p.tenant, model, Role::Query, std::slice::from_ref(&question)).await {
        Ok((mut v, _)) => v.remove(0),
        Err(e) => {
            tracing::warn!(error = %e, "semantic cache: embedding failed; treated as a miss");
            return HitOrMiss::Miss(None);
        }
    };
    let pending = StoreLater { tenant: p.tenant.clone(), scope: scope_key, question, embedding };
    if mode == Mode::Refresh {
        return HitOrMiss::Miss(Some(pending));
    }
    let requested = headers.get(THRESHOLD_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f32>().ok());
    let threshold = effective_threshold(tenant_threshold, requested);
    let key = match dp.db.data_key(&dp.keyring, &p.tenant).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "semantic cache: no data key; treated as a miss");
            return HitOrMiss::Miss(None);
        }
    };
    let cache = SemanticCache { db: &dp.db, threshold, guard: cfg.guard, ttl_s: cfg.ttl_secs };
    let region = st.config.server.region.as_str();
    match cache.lookup(&p.tenant, &key, &pending.scope, &pending.question, &pending.embedding).await {
        Ok(Found::Hit { answer, similarity, age_s }) => {
            record(&p.tenant, region, &Lookup::hit(similarity));
            tracing::info!(similarity, age_s, "semantic cache hit");
            HitOrMiss::Hit(serve_hit(st, p, chat, &answer, similarity, age_s, trace))
        }
        Ok(Found::Miss { nearest, reason }) => {
            let l = Lookup::miss(nearest, reason);
            record(&p.tenant, region, &l);
            tracing::debug!(nearest, outcome = l.outcome, "semantic cache miss");
            HitOrMiss::Miss(Some(pending))
        }
        Err(e) => {
            tracing::warn!(error = %e, "semantic cache lookup failed; treated as a miss");
            HitOrMiss::Miss(Some(pending))
        }
    }
}

/// Stores a complete answer in the background (the caller already has it).
pub fn store(st: &SharedState, pending: StoreLater, answer: CachedAnswer) {
    let Some(dp) = st.data.clone() else { return };
    let cfg = st.config.semantic_cache;
    tokio::spawn(async move {
        let key = match dp.db.data_key(&dp.keyring, &pending.tenant).await {
            Ok(k) => k,
            Err(e) => return tracing::warn!(error = %e, "semantic cache store: no data key"),
        };
        let cache = SemanticCache { db: &dp.db, threshold: cfg.threshold, guard: cfg.guard, ttl_s: cfg.ttl_secs };
        if let Err(e) = cache.store(&pending.tenant, &key, &pending.scope, &pending.question, &pending.embedding, &answer).await {
            tracing::warn!(error = %e, "semantic cache store failed");
        }
    });
}

fn serve_hit(st: &SharedState, p: &Principal, chat: &ChatRequest, answer: &CachedAnswer, similarity: f32, age_s: u64, trace: &Trace) -> Response {
    // Usage: no provider was called; the tokens and cost the hit saved are recorded.
    let u = answer.response.usage.unwrap_or_default();
    let mut e = UsageEvent::for_principal(p, st.config.server.region.as_str(), trace.feature.clone());
    e.answered_by("cache", "cache", &answer.response.model).tokens(&u);
    e.cost_usd = Some(0.0);
    e.saved_usd = st.prices.lookup(&answer.response.model).map(|price| price.cost(&u));
    e.latency_ms = trace.started.elapsed().as_secs_f64() * 1000.0;
    e.stream = chat.is_stream();
    e.cache = Some("semantic".into());
    e.semantic = Some(Lookup::hit(similarity));
    usage::emit(e);

    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let mut resp = if chat.is_stream() {
        let frames: Vec<Result<bytes::Bytes, std::convert::Infallible>> = answer.to_sse(&id, chat.wants_stream_usage()).into_iter().map(|f| Ok(bytes::Bytes::from(f))).collect();
        let mut r = axum::body::Body::from_stream(futures_util::stream::iter(frames)).into_response();
        r.headers_mut().insert("content-type", HeaderValue::from_static("text/event-stream; charset=utf-8"));
        r.headers_mut().insert("cache-control", HeaderValue::from_static("no-cache"));
        r
    } else {
        let mut body = answer.response.clone();
        body.id = id;
        axum::Json(body).into_response()
    };
    let h = resp.headers_mut();
    h.insert("x-meridian-cache", HeaderValue::from_str(&format!("semantic; similarity={similarity:.4}; age={age_s}")).expect("ASCII"));
    h.insert("x-meridian-attempts", HeaderValue::from_static("0"));
    h.insert("x-meridian-cost-usd", HeaderValue::from_static("0.00000000"));
    resp
}

