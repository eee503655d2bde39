//! `POST /v1/chat/completions`: steps 2, 4, 6b and 8 of the request path (parse and
//! validate, RBAC, semantic cache, route), then hands over to the non-streaming or
//! streaming driver.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::{ChatRequest, GatewayError};
use meridian_shared::auth::{roles_allow, Principal, RouteClass};
use meridian_shared::cache::CachedAnswer;
use meridian_shared::drive::{estimated_cost, ChatCall};
use meridian_shared::ratelimit::{estimate_tokens, ReserveRequest};
use meridian_shared::routing::ModelRoute;

use super::upstream::unix_ms;
use crate::http::error::ApiError;
use super::headers::Trace;
use crate::semantic_cache::lookup::{self as semantic, StoreLater};
use super::{complete, stream};
use crate::http::body;
use crate::state::SharedState;
use crate::tenant_limits::Reservation;
use crate::usage;

/// RBAC and routing shared by every model-addressed endpoint.
pub fn authorise<'a>(st: &'a SharedState, principal: &Principal, route: RouteClass, model: &str) -> Result<&'a Arc<ModelRoute>, ApiError> {
    if !principal.may_use_model(model) || !roles_allow(principal.roles.as_deref(), &st.config.roles, route, Some(model)) {
        return Err(GatewayError::Forbidden(format!("this API key may not use model {model:?}")).into());
    }
    st.router.models.get(model).ok_or_else(|| GatewayError::NotFound(format!("the model {model:?} does not exist")).into())
}

pub async fn handle(State(st): State<SharedState>, req: Request) -> Response {
    let trace = Trace::new().with_feature(req.headers());
    let headers = req.headers().clone();
    let Some(principal) = req.extensions().get::<Principal>().cloned() else {
        return ApiError::from(GatewayError::Unauthenticated("missing API key".into())).into_response();
    };
    let bytes = match body::read_body(req.into_body(), st.config.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut chat: ChatRequest = match body::parse_json(&bytes) {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Err(e) = body::validate_chat(&mut chat, &st.config.limits) {
        return ApiError::from(e).into_response();
    }
    // RBAC before the cache: a key may not read answers of a model it may not call.
    let model = match authorise(&st, &principal, RouteClass::Chat, &chat.model) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let (reservation, trace) = match reserve(&st, &principal, model, &chat, trace).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    match semantic::lookup(&st, &principal, &chat, &headers, &trace).await {
        semantic::HitOrMiss::Hit(resp) => {
            if let Some(r) = &reservation {
                st.tenant_limits.settle(r, 0, 0.0).await;
            }
            resp
        }
        semantic::HitOrMiss::Miss(pending) => route(&st, model, principal, chat, trace, pending, reservation).await,
    }
}

/// Reserves the call against the tenant's limits and budget (`tenants[].limits`; shared
/// by the region's replicas): the reservation to settle, with the `x-ratelimit-*`
/// headers on the trace; or the 429.
async fn reserve(st: &SharedState, p: &Principal, model: &ModelRoute, chat: &ChatRequest, mut trace: Trace) -> Result<(Option<Reservation>, Trace), Response> {
    let Some(limits) = st.config.tenant(&p.tenant).map(|t| &t.limits).filter(|l| !l.is_empty()) else { return Ok((None, trace)) };
    let tokens = estimate_tokens(chat, st.config.limits.default_max_tokens);
    let req = ReserveRequest::new(&p.key_name, &chat.model, tokens, estimated_cost(&st.router, &st.prices, model, tokens), unix_ms());
    match st.tenant_limits.reserve(&p.tenant, limits, &req, unix_ms()).await {
        Ok(Some((r, outcome))) => match outcome.admitted() {
            Ok((_, headers)) => {
                trace.limit_headers = headers;
                Ok((Some(r), trace))
            }
            Err(refusal) => Err(ApiError::from(refusal.error).with_headers(refusal.headers).into_response()),
        },
        Ok(None) => Ok((None, trace)),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// Steps 4 and 8 onwards for a parsed, validated request: RBAC, route, then the
/// non-streaming or streaming driver. Chatbots enter here with their grounded request.
pub async fn serve(st: SharedState, principal: Principal, chat: ChatRequest, trace: Trace) -> Response {
    let model = match authorise(&st, &principal, RouteClass::Chat, &chat.model) {
        Ok(model) => model,
        Err(e) => return e.into_response(),
    };
    match reserve(&st, &principal, model, &chat, trace).await {
        Ok((reservation, trace)) => route(&st, model, principal, chat, trace, None, reservation).await,
        Err(refused) => refused,
    }
}

/// Step 8 onwards for an authorised request, storing the finished answer in the
/// semantic cache when `pending` says so, and settling the reservation with the real
/// usage before the answer leaves.
async fn route(st: &SharedState, model: &Arc<ModelRoute>, principal: Principal, chat: ChatRequest, trace: Trace, pending: Option<StoreLater>, reservation: Option<Reservation>) -> Response {
    tracing::Span::current().record("model", chat.model.as_str());
    let region = st.tenant_in_region_only(&principal.tenant).then_some(principal.home_region);
    if chat.is_stream() {
        return stream::respond(st.clone(), stream::StreamedChat { req: chat, model: model.clone(), principal, region, pending, reservation }, trace).await;
    }
    let mut trace = trace;
    let result = complete::run(st, ChatCall(&chat), model, region, &mut trace).await;
    if let Some(r) = &reservation {
        let (tokens, cost) = result.as_ref().map_or((0, 0.0), |a| (a.output.usage.unwrap_or_default().total_tokens, a.cost_usd.unwrap_or(0.0)));
        st.tenant_limits.settle(r, tokens, cost).await;
    }
    match result {
        Ok(answer) => {
            let resp = answer.output;
            let dep = &st.router.deployments[answer.deployment];
            let cost = answer.cost_usd;
            usage::emit(usage::answered(st.region(), &principal, &trace, dep, &resp.model, resp.usage.unwrap_or_default(), cost));
            // Only finished answers are cached (a truncated one must never be replayed).
            if let Some(p) = pending.filter(|_| resp.choices.first().is_some_and(|c| c.finish_reason.is_some())) {
                semantic::store(st, p, CachedAnswer { response: resp.clone(), stored_at: unix_ms() / 1000 });
            }
            let mut out = axum::Json(resp).into_response();
            let h = out.headers_mut();
            for (k, v) in trace.headers() {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            }
            if let Some(c) = cost {
                h.insert("x-meridian-cost-usd", HeaderValue::from_str(&format!("{c:.8}")).unwrap());
            }
            metrics::histogram!("meridian_gateway_overhead_seconds").record(trace.overhead_ms() / 1000.0);
            out
        }
        Err(e) => e.into_response(),
    }
}
