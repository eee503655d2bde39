//! `POST /internal/embed`: the edge's semantic cache asks the tenant's home region for
//! the vectors of questions, computed by the tenant's local model (as queries) through the
//! region's Redis embedding cache. The text is processed only in the tenant's region: a
//! tenant homed elsewhere is refused.
//!
//! Request `{"tenant": "acme", "texts": ["..."]}`; response
//! `{"model": "all-minilm-l6-v2", "dims": 384, "vectors": [[...]]}`.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use crate::embed::Role;
use meridian_shared::api::GatewayError;
use serde::Deserialize;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::body;
use crate::state::SharedState;

/// Most texts per call (the edge sends one question at a time).
pub const MAX_TEXTS: usize = 16;
/// Most bytes per text.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedRequest {
    tenant: String,
    texts: Vec<String>,
}

pub async fn handle(State(st): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    run(st, headers, body).await.unwrap_or_else(|e| ApiError::from(e).into_response())
}

async fn run(st: SharedState, headers: HeaderMap, body: Body) -> Result<Response, GatewayError> {
    super::check(&st, &headers)?;
    let bytes = body::read_body(body, MAX_TEXTS * MAX_TEXT_BYTES + 1024).await?;
    let req: EmbedRequest = body::parse_json(&bytes)?;
    let tenant = st.config.tenant(&req.tenant).ok_or_else(|| GatewayError::invalid_param(format!("unknown tenant {:?}", req.tenant), "tenant"))?;
    if tenant.region != st.config.server.region {
        return Err(GatewayError::Forbidden(format!("tenant {} is homed in region {}; its text is not processed here", tenant.id, tenant.region.as_str())));
    }
    if req.texts.is_empty() || req.texts.len() > MAX_TEXTS {
        return Err(GatewayError::invalid_param(format!("texts must hold 1 to {MAX_TEXTS} strings"), "texts"));
    }
    if req.texts.iter().any(|t| t.trim().is_empty() || t.len() > MAX_TEXT_BYTES) {
        return Err(GatewayError::invalid_param(format!("each text must be non-empty and at most {MAX_TEXT_BYTES} bytes"), "texts"));
    }
    let dp = st.data.as_deref().ok_or_else(|| GatewayError::Unavailable("this region has no data plane configured".into()))?;
    let model = tenant.embedding_model();
    let (vectors, _) = dp.embedder.embed(&tenant.id, model, Role::Query, &req.texts).await.map_err(|e| {
        tracing::error!(error = %e, "embedding for the edge failed");
        GatewayError::Unavailable(format!("embedding failed: {e}"))
    })?;
    Ok(Json(json!({"model": model.name(), "dims": vectors.first().map_or(0, Vec::len), "vectors": vectors})).into_response())
}
