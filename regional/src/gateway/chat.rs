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
use meridian_shared::drive::ChatCall;
use meridian_shared::routing::ModelRoute;

use super::upstream::unix_ms;
use crate::http::error::ApiError;
use super::headers::Trace;
use crate::semantic_cache::lookup::{self as semantic, StoreLater};
use super::{complete, stream};
use crate::http::body;
use crate::state::SharedState;
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
    match semantic::lookup(&st, &principal, &chat, &headers, &trace).await {
        semantic::HitOrMiss::Hit(resp) => resp,
        semantic::HitOrMiss::Miss(pending) => route(&st, model, principal, chat, trace, pending).await,
    }
}

/// Steps 4 and 8 onwards for a parsed, validated request: RBAC, route, then the
/// non-streaming or streaming driver. Chatbots enter here with their grounded request.
pub async fn serve(st: SharedState, principal: Principal, chat: ChatRequest, trace: Trace) -> Response {
    match authorise(&st, &principal, RouteClass::Chat, &chat.model) {
        Ok(model) => route(&st, model, principal, chat, trace, None).await,
        Err(e) => e.into_response(),
    }
}

/// Step 8 onwards for an authorised request, storing the finished answer in the
/// semantic cache when `pending` says so.
async fn route(st: &SharedState, model: &Arc<ModelRoute>, principal: Principal, chat: ChatRequest, trace: Trace, pending: Option<StoreLater>) -> Response {
    tracing::Span::current().record("model", chat.model.as_str());
    let region = st.tenant_in_region_only(&principal.tenant).then_some(principal.home_region);
    if chat.is_stream() {
        return stream::respond(st.clone(), stream::StreamedChat { req: chat, model: model.clone(), principal, region, pending }, trace).await;
    }
    let mut trace = trace;
    match complete::run(st, ChatCall(&chat), model, region, &mut trace).await {
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
