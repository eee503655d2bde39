//! The request path of the regional host, in order, in one place: one `ServiceBuilder`,
//! one layer per concern, outermost first; handlers only handle.
//!
//! ```text
//!  1 request id + tracing span      SetRequestId / TraceLayer / PropagateRequestId
//!  2 request counts and durations   gateway::observe::layer
//!  3 identity → principal           gateway::identity::layer (API key from the config or
//!                                   issued at runtime — control::resolve —, or edge-vouched)
//!  4 residency                      gateway::residency::layer (homed elsewhere → 403)
//!  5 RBAC by route class            gateway::rbac::layer
//!  6 rate limit                     gateway::ratelimit::layer
//!    ── handlers ──
//!  7 body limit, parse, validate    http::body (OpenAI errors naming the field)
//!  8 model grants                   gateway::chat::authorise, gateway::models
//!  9 semantic cache                 semantic_cache::lookup (exact cache: at the edge)
//!    RAG: knowledge bases, docs     knowledge::{bases, documents, urls}
//!    RAG: chatbot grounding         chatbots::chat → rag::answer, then step 10
//!    media jobs                     jobs::{create, read, notify}
//!    admin: keys, audit             control::rest (tenant transactions, audit in each)
//! 10 drive ↔ adapter ↔ HTTP         gateway::complete / gateway::stream (the shared
//!                                   driver; reqwest + tokio timers here)
//! 11 usage + cost, off the path     usage::emit
//! ```
//!
//! Layers 3–6 act on API routes (those `RouteClass::of_path` knows); operator routes
//! (`/healthz`, `/readyz`, `/metrics`, `/internal/*`) pass through them and check the
//! internal secret themselves.

use axum::http::{HeaderName, Request};
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::gateway::{chat, embeddings, identity, models, observe, ratelimit, rbac, residency};
use crate::state::SharedState;
use crate::{admin, chatbots, control, health, jobs, knowledge};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn span_for<B>(req: &Request<B>) -> tracing::Span {
    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", request_id = id, method = %req.method(), route = req.uri().path(), tenant = tracing::field::Empty, model = tracing::field::Empty)
}

pub fn router(st: SharedState, metrics: PrometheusHandle) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/models", get(models::list))
        .route("/v1/admin/usage", get(admin::usage::report))
        .route("/v1/admin/usage/summary", get(admin::usage::summary))
        .route("/v1/admin/keys", post(control::rest::create).get(control::rest::list))
        .route("/v1/admin/keys/{id}", get(control::rest::get).patch(control::rest::update).delete(control::rest::revoke))
        .route("/v1/admin/keys/{id}/rotate", post(control::rest::rotate))
        .route("/v1/admin/audit", get(control::rest::audit))
        .route("/v1/graphql", post(control::graphql::handle))
        .route("/v1/knowledge-bases", post(knowledge::bases::create).get(knowledge::bases::list))
        .route("/v1/knowledge-bases/{kb}/documents", post(knowledge::documents::upload).get(knowledge::documents::list))
        .route("/v1/knowledge-bases/{kb}/documents/urls", post(knowledge::urls::ingest))
        .route("/v1/knowledge-bases/{kb}/documents/{doc}", delete(knowledge::documents::delete))
        .route("/v1/chatbots", post(chatbots::manage::create).get(chatbots::manage::list))
        .route("/v1/chatbots/{id}", get(chatbots::manage::get))
        .route("/v1/chatbots/{id}/chat", post(chatbots::chat::handle))
        .route("/v1/images/generations", post(jobs::create::images))
        .route("/v1/audio/speech", post(jobs::create::speech))
        .route("/v1/audio/transcriptions", post(jobs::create::transcriptions))
        .route("/v1/videos/generations", post(jobs::create::videos))
        .route("/v1/jobs", get(jobs::read::list))
        .route("/v1/jobs/stream", get(jobs::notify::stream))
        .route("/v1/jobs/{id}", get(jobs::read::get).delete(jobs::read::cancel));
    let ops = Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(move || std::future::ready(metrics.render())))
        .route("/internal/usage", post(admin::usage::ingest))
        .route("/internal/embed", post(crate::internal::embed::handle))
        .route("/internal/keys/resolve", post(control::resolve::handle));
    api.merge(ops).fallback(health::not_found).with_state(st.clone()).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(span_for))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(middleware::from_fn(observe::layer))
            .layer(middleware::from_fn_with_state(st.clone(), identity::layer))
            .layer(middleware::from_fn_with_state(st.clone(), residency::layer))
            .layer(middleware::from_fn_with_state(st.clone(), rbac::layer))
            .layer(middleware::from_fn_with_state(st, ratelimit::layer)),
    )
}
