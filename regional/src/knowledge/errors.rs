//! Data-plane failures → OpenAI error envelopes with the right status. Internal details
//! (SQL, S3) are logged, not shown.

use crate::rag::extract::ExtractError;
use crate::rag::ingest::IngestError;
use meridian_shared::api::GatewayError;

use crate::http::error::ApiError;

pub fn ingest(e: IngestError) -> ApiError {
    let g = match e {
        IngestError::NoKnowledgeBase(id) => GatewayError::ResourceNotFound(format!("knowledge base {id} does not exist")),
        IngestError::TooLarge { limit, .. } => GatewayError::PayloadTooLarge { limit },
        IngestError::Extract(ExtractError::Unsupported(t)) => GatewayError::UnsupportedMediaType(ExtractError::Unsupported(t).to_string()),
        IngestError::Extract(x) => GatewayError::InvalidRequest { message: x.to_string(), param: Some("file".into()), code: Some("invalid_document") },
        e @ IngestError::TooManyChunks { .. } => GatewayError::InvalidRequest { message: e.to_string(), param: Some("file".into()), code: Some("document_too_long") },
        e @ IngestError::Language(_) => GatewayError::invalid_param(e.to_string(), "language"),
        other => internal(&other),
    };
    g.into()
}

pub fn internal(e: &dyn std::fmt::Display) -> GatewayError {
    tracing::error!(error = %e, "data plane failure");
    GatewayError::Internal("the data plane failed; the operation was not applied".into())
}

pub fn sql(e: sqlx::Error) -> ApiError {
    internal(&e).into()
}
