//! The media API: `POST /v1/images/generations`, `/v1/audio/speech`,
//! `/v1/audio/transcriptions` (multipart) and `/v1/videos/generations` create jobs
//! (`create`); `GET /v1/jobs/{id}`, `GET /v1/jobs`, `DELETE /v1/jobs/{id}` read and cancel
//! them (`read`); `GET /v1/jobs/stream` notifies over SSE or WebSocket (`notify`); `view`
//! renders a job, with presigned URLs for its files.

pub mod create;
pub mod notify;
pub mod read;
pub mod view;

use axum::Extension;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::Principal;
use meridian_shared::config::MediaConfig;

use crate::data_plane::DataPlane;
use crate::http::error::ApiError;
use crate::media_plane::MediaPlane;
use crate::state::SharedState;

/// What every media handler needs: the caller (the RBAC layer let it use media routes), the stores,
/// the queues and the media settings.
pub struct Context<'a> {
    pub principal: Principal,
    pub data: &'a DataPlane,
    pub media: &'a MediaPlane,
    pub settings: &'a MediaConfig,
}

pub fn context(st: &SharedState, principal: Option<Extension<Principal>>) -> Result<Context<'_>, ApiError> {
    let Extension(principal) = principal.ok_or_else(|| GatewayError::Unauthenticated("missing API key".into()))?;
    let (Some(data), Some(media), Some(settings)) = (st.data.as_deref(), st.media.as_deref(), st.config.media.as_ref()) else {
        return Err(GatewayError::Unavailable("this region has no media generation configured".into()).into());
    };
    Ok(Context { principal, data, media, settings })
}

/// A job id from the path; anything that is not a UUID names no job (404).
pub fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| GatewayError::ResourceNotFound(format!("job {raw:?} does not exist")).into())
}

/// Database and object-store failures, as 503s (details go to the log only).
pub fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "media store failure");
    GatewayError::Unavailable("the job store is unavailable; try again".into()).into()
}
