//! The request path of the regional gateway, in order, in one place.
//!
//! ```text
//!  1 request id + tracing span      SetRequestId / TraceLayer / PropagateRequestId
//!    request counts and durations   gateway::observe::layer
//!  2 body limit + parse             gateway::request (inside handlers, OpenAI errors)
//!  3 auth (API key → principal)     gateway::auth::layer
//!  4 region check, RBAC             gateway::auth::layer, gateway::chat::authorise
//!  5 rate limit                     gateway::ratelimit::layer
//!  6-7 exact / semantic cache       (edge issue / cache issue)
//!    RAG: knowledge bases, docs     knowledge::{bases, documents, urls} (tenant transactions)
//!    RAG: chatbot grounding         chatbots::chat → rag::answer, then step 8 onwards
//!  8 route                          routing::Router::plan
//!  9 failover ↔ adapter ↔ HTTP      gateway::complete, gateway::stream, gateway::attempt
//! 10 stream relay + timers          gateway::stream
//! 11 usage + cost, off the path     usage::emit
//! ```

use axum::http::{HeaderName, Request};
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::gateway::{auth, chat, embeddings, models, observe, ratelimit};
use crate::state::SharedState;
use crate::{admin, chatbots, health, jobs, knowledge};

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
        .route("/v1/jobs/{id}", get(jobs::read::get).delete(jobs::read::cancel))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(observe::layer))
                .layer(middleware::from_fn_with_state(st.clone(), auth::layer))
                .layer(middleware::from_fn_with_state(st.clone(), ratelimit::layer)),
        );
    let ops = Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(move || std::future::ready(metrics.render())))
        .route("/internal/usage", post(admin::usage::ingest))
        .route("/internal/embed", post(crate::internal::embed::handle));
    api.merge(ops).fallback(health::not_found).with_state(st).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(span_for))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
    )
}
