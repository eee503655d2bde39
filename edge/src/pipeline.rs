//! The edge's request path, in order, in one place:
//!
//! ```text
//!  1 request id, timing                 (here)
//!  3 auth: API key or JWT → principal   identity::authenticate
//!  4 RBAC: route, then model            roles_allow, Principal::may_use_model
//!  8b residency: RAG, chains, media,    forward::to_home_region (503 if it is down,
//!     admin, embeddings → home region      never another region)
//!  2 body limit, parse, validate        api::parse_json / validate_chat
//!  5 rate limit + budget: reserve       limits::reserve (RateLimiter Durable Object)
//!  6 exact cache                        cache::get (ResponseCache Durable Object)
//!  6b semantic cache                    semantic::lookup (home region embeds the
//!                                         question; SemanticCache Durable Object)
//!  8-10 route, drive, relay             drive::complete / drive::stream (the shared
//!                                         driver; fetch + Delay here)
//! 11 settle + cache store, then usage  limits::settle, cache::put, semantic::store
//!                                       before the answer ends; usage::send in waitUntil
//! ```
//!
//! `/internal/*` (the shared internal secret, no API key) is `internal::handle`.

use std::rc::Rc;

use meridian_shared::api::{parse_json, validate_chat, ChatRequest, ChatResponse, GatewayError};
use meridian_shared::auth::{roles_allow, Principal, RouteClass};
use meridian_shared::cache::semantic::{Lookup, THRESHOLD_HEADER};
use meridian_shared::cache::{cache_key, is_cacheable, CachedAnswer};
use serde_json::json;
use worker::{Context, Env, Headers, Method, Request, Response};

use crate::clock::{now_ms, random_id};
use crate::respond::{self, Trace};
use crate::semantic::HitOrMiss;
use crate::settings::{self, Settings};
use crate::drive::{StreamedChat, Streamed};
use crate::usage::UsageEvent;
use crate::{cache, drive, forward, identity, internal, limits, semantic, usage};

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

fn fail(e: GatewayError, trace: &Trace) -> Response {
    respond::error(&e, trace.headers())
}

pub async fn handle(req: Request, env: Env, ctx: Context) -> Response {
    let mut trace = Trace::new(header(&req, "x-request-id").unwrap_or_else(random_id), now_ms());
    trace.feature = header(&req, "x-meridian-feature");
    let path = req.path();
    if path == "/healthz" {
        return Response::ok("ok").unwrap_or_else(|_| fail(GatewayError::Internal("response".into()), &trace));
    }
    let s = match settings::load(&env) {
        Ok(s) => s,
        Err(e) => return fail(e, &trace),
    };
    if path.starts_with("/internal/") {
        return internal::handle(req, &env, &s, &trace).await;
    }
    let principal = match identity::authenticate(&req, &s).await {
        Ok(p) => p,
        Err(e) => return fail(e, &trace),
    };
    let Some(route) = RouteClass::of_path(&path) else {
        return fail(GatewayError::NotFound(format!("no route for {path}")), &trace);
    };
    if !roles_allow(principal.roles.as_deref(), &s.config.roles, route, None) {
        return fail(GatewayError::Forbidden(format!("this caller may not use {} routes", route.as_str())), &trace);
    }
    match route {
        RouteClass::Chat => chat(req, env, ctx, s, principal, trace).await,
        RouteClass::Models => models(&s, &principal, &trace),
        _ => match forward::to_home_region(req, &principal, &s).await {
            Ok(r) => r,
            Err(e) => fail(e, &trace),
        },
    }
}

fn models(s: &Settings, p: &Principal, trace: &Trace) -> Response {
    let data: Vec<_> = s.router.visible_models(p, &s.config.roles).into_iter().map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "meridian"})).collect();
    respond::json(200, json!({"object": "list", "data": data}).to_string().into_bytes(), trace.headers())
}

async fn read_chat(mut req: Request, s: &Settings) -> Result<ChatRequest, GatewayError> {
    let limit = s.config.limits.max_body_bytes;
    if header(&req, "content-length").and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    if req.method() != Method::Post {
        return Err(GatewayError::invalid("use POST"));
    }
    let bytes = req.bytes().await.map_err(|e| GatewayError::invalid(format!("could not read the request body: {e}")))?;
    if bytes.len() > limit {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let mut chat: ChatRequest = parse_json(&bytes)?;
    validate_chat(&mut chat, &s.config.limits)?;
    Ok(chat)
}


async fn chat(req: Request, env: Env, ctx: Context, s: Rc<Settings>, principal: Principal, mut trace: Trace) -> Response {
    let cache_mode = cache::mode(&req);
    let semantic_threshold = header(&req, THRESHOLD_HEADER).and_then(|v| v.trim().parse::<f32>().ok());
    let chat = match read_chat(req, &s).await {
        Ok(c) => c,
        Err(e) => return fail(e, &trace),
    };
    if !principal.may_use_model(&chat.model) || !roles_allow(principal.roles.as_deref(), &s.config.roles, RouteClass::Chat, Some(&chat.model)) {
        return fail(GatewayError::Forbidden(format!("this caller may not use model {:?}", chat.model)), &trace);
    }
    let Some(model) = s.router.models.get(&chat.model) else {
        return fail(GatewayError::NotFound(format!("the model {:?} does not exist", chat.model)), &trace);
    };
    let tenant = s.tenant(&principal.tenant).cloned();
    let region = tenant.as_ref().filter(|t| t.providers_in_region_only).map(|t| t.region);
    let tenant_limits = tenant.map(|t| t.limits).unwrap_or_default();

    // 5: reserve the estimate.
    let est_tokens = meridian_shared::ratelimit::estimate_tokens(&chat, s.config.limits.default_max_tokens);
    let est_cost = meridian_shared::drive::estimated_cost(&s.router, &s.prices, model, est_tokens);
    let reservation = match limits::reserve(&env, &principal.tenant, &tenant_limits, &principal.key_name, &chat.model, est_tokens, est_cost).await {
        Ok((r, h)) => {
            trace.limit_headers = h;
            r
        }
        Err(refusal) => {
            trace.limit_headers = refusal.headers;
            return fail(refusal.error, &trace);
        }
    };

    // 6: exact cache.
    let cfg = s.edge.cache;
    let cacheable = cfg.enabled && cache_mode != cache::Mode::Bypass && is_cacheable(&chat, cfg.cache_tool_requests);
    let key = cache_key(&principal.tenant, &chat);
    if cacheable && cache_mode == cache::Mode::Use {
        if let Some(hit) = cache::get(&env, &principal.tenant, &key).await {
            trace.cache = "exact";
            trace.cache_age_s = Some((now_ms() / 1000).saturating_sub(hit.stored_at));
            return serve_hit(&env, &ctx, &s, &principal, &chat, hit, reservation, None, &trace).await;
        }
    }
    trace.cache = if cache_mode == cache::Mode::Use {
        "miss"
    } else if cache_mode == cache::Mode::Refresh {
        "refresh"
    } else {
        "bypass"
    };

    // 6b: semantic cache.
    let (pending, lookup) = match semantic::lookup(&env, &s, &principal, &chat, cache_mode, semantic_threshold, &mut trace).await {
        HitOrMiss::Hit { answer, similarity, age_s } => {
            trace.cache = "semantic";
            trace.cache_similarity = Some(similarity);
            trace.cache_age_s = Some(age_s);
            return serve_hit(&env, &ctx, &s, &principal, &chat, answer, reservation, Some(Lookup::hit(similarity)), &trace).await;
        }
        HitOrMiss::Miss { pending, lookup } => (pending, lookup),
    };
    let ttl = cfg.ttl_secs;
    let max_entry = cfg.max_entry_bytes;

    // 8-10: route, fail over, relay. Limits are settled and the answer cached before the
    // client sees the end of it; only the usage event goes after, in waitUntil.
    if chat.is_stream() {
        let keep = cacheable || pending.is_some();
        let (s_settle, s_after, p2, env2, feature, started) = (s.clone(), s.clone(), principal.clone(), env.clone(), trace.feature.clone(), trace.started_ms);
        let tenant_id = principal.tenant.clone();
        let settle = move |out: &Streamed| {
            let (tokens, cost) = out.finished.as_ref().map_or((0, 0.0), |f| (f.usage.total_tokens, f.cost_usd.unwrap_or(0.0)));
            let answer = out.answer.clone().filter(|a| serde_json::to_vec(a).map(|b| b.len()).unwrap_or(usize::MAX) <= max_entry);
            async move {
                if let Some(r) = reservation {
                    limits::settle(env2.clone(), r, tokens, cost).await;
                }
                if let Some(a) = answer {
                    if let Some(p) = pending {
                        semantic::store(env2.clone(), &s_settle, p, a.clone()).await;
                    }
                    if cacheable {
                        cache::put(env2, tenant_id, key, a, ttl).await;
                    }
                }
            }
        };
        let after = move |out: Streamed| async move {
            let Some(f) = out.finished else {
                drive::log_attempts(&out.attempts);
                return;
            };
            let dd = &s_after.router.deployments[f.deployment];
            let mut e = UsageEvent::for_principal(&p2, "edge", feature);
            e.finished(&dd.name, &dd.provider_name, &f);
            e.latency_ms = (now_ms() - started) as f64;
            e.semantic = lookup;
            e.attempts = out.attempts;
            usage::send(&s_after, &p2, &e).await;
        };
        return drive::stream(&ctx, s.clone(), StreamedChat { req: chat, model: model.clone(), region, cache: keep }, trace, settle, after).await;
    }
    let (result, attempts) = drive::complete(&s, &chat, model, region, &mut trace).await;
    match result {
        Ok(answer) => {
            let (resp, d, cost) = (answer.output, answer.deployment, answer.cost_usd);
            let u = resp.usage.unwrap_or_default();
            let dd = &s.router.deployments[d];
            let mut e = UsageEvent::for_principal(&principal, "edge", trace.feature.clone());
            e.answered_by(&dd.name, &dd.provider_name, &resp.model).tokens(&u);
            e.latency_ms = (now_ms() - trace.started_ms) as f64;
            e.cost_usd = cost;
            e.semantic = lookup;
            e.attempts = attempts;
            let body = serde_json::to_vec(&resp).unwrap_or_default();
            if let Some(r) = reservation {
                limits::settle(env.clone(), r, u.total_tokens, cost.unwrap_or(0.0)).await;
            }
            if body.len() <= max_entry {
                let answer = CachedAnswer { response: resp, stored_at: now_ms() / 1000 };
                if let Some(p) = pending {
                    semantic::store(env.clone(), &s, p, answer.clone()).await;
                }
                if cacheable {
                    cache::put(env.clone(), principal.tenant.clone(), key, answer, ttl).await;
                }
            }
            let (s2, p2) = (s.clone(), principal.clone());
            ctx.wait_until(async move { usage::send(&s2, &p2, &e).await });
            let h = trace.headers();
            if let Some(c) = cost {
                let _ = h.set("x-meridian-cost-usd", &format!("{c:.8}"));
            }
            respond::json(200, body, h)
        }
        Err(e) => {
            drive::log_attempts(&attempts);
            if let Some(r) = reservation {
                limits::settle(env.clone(), r, 0, 0.0).await;
            }
            fail(GatewayError::from_upstream(&e), &trace)
        }
    }
}

/// Serves a cache hit (exact, or semantic with its `lookup`): the reservation is released,
/// the usage event records the tokens and cost the hit saved.
#[allow(clippy::too_many_arguments)]
async fn serve_hit(
    env: &Env,
    ctx: &Context,
    s: &Rc<Settings>,
    p: &Principal,
    chat: &ChatRequest,
    hit: CachedAnswer,
    reservation: Option<limits::Reservation>,
    lookup: Option<Lookup>,
    trace: &Trace,
) -> Response {
    let u = hit.response.usage.unwrap_or_default();
    let mut e = UsageEvent::for_principal(p, "edge", trace.feature.clone());
    e.answered_by("cache", "cache", &hit.response.model).tokens(&u);
    e.cost_usd = Some(0.0);
    e.saved_usd = s.prices.lookup(&hit.response.model).map(|price| price.cost(&u));
    e.latency_ms = (now_ms() - trace.started_ms) as f64;
    e.stream = chat.is_stream();
    e.cache = Some(trace.cache.into());
    e.semantic = lookup;
    if let Some(r) = reservation {
        limits::settle(env.clone(), r, 0, 0.0).await;
    }
    let (s2, p2) = (s.clone(), p.clone());
    ctx.wait_until(async move { usage::send(&s2, &p2, &e).await });
    replay(&hit, chat, trace)
}

/// A cache hit, as JSON or as an SSE stream (same shape a live answer has).
fn replay(hit: &CachedAnswer, chat: &ChatRequest, trace: &Trace) -> Response {
    let h: Headers = trace.headers();
    if chat.is_stream() {
        let body: Vec<u8> = hit.to_sse(&format!("chatcmpl-{}", random_id()), chat.wants_stream_usage()).concat();
        let _ = h.set("content-type", "text/event-stream; charset=utf-8");
        return match Response::from_bytes(body) {
            Ok(r) => r.with_headers(h),
            Err(e) => fail(GatewayError::Internal(e.to_string()), trace),
        };
    }
    let resp: &ChatResponse = &hit.response;
    respond::json(200, serde_json::to_vec(resp).unwrap_or_default(), h)
}
