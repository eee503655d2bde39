//! Knowledge bases and their documents over HTTP (`/v1/knowledge-bases`): create and list
//! knowledge bases, upload documents (raw body or multipart), ingest from URLs, list and
//! delete documents. Everything runs in a tenant transaction of the caller's tenant.

pub mod bases;
pub mod documents;
pub mod errors;
pub mod urls;

use axum::Extension;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::Principal;

use crate::data_plane::DataPlane;
use crate::http::error::ApiError;
use crate::state::SharedState;

/// Handlers take the principal the auth layer set as `Option<Caller>`.
pub type Caller = Extension<Principal>;

/// The caller's principal (the RBAC layer let it use RAG routes) and the data plane.
pub fn context(st: &SharedState, principal: Option<Extension<Principal>>) -> Result<(Principal, &DataPlane), ApiError> {
    let Extension(principal) = principal.ok_or_else(|| GatewayError::Unauthenticated("missing API key".into()))?;
    let dp = st.data.as_deref().ok_or_else(|| GatewayError::Unavailable("this region has no data plane configured".into()))?;
    Ok((principal, dp))
}

/// Parses a path id, as a 404 when it is not a UUID (it names nothing that exists).
pub fn parse_id(kind: &str, raw: &str) -> Result<sqlx::types::Uuid, ApiError> {
    raw.parse().map_err(|_| GatewayError::ResourceNotFound(format!("{kind} {raw:?} does not exist")).into())
}
