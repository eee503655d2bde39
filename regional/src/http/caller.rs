//! [`Caller`]: the principal the identity layer put on the request, as an extractor; a
//! request without one (which the layers never let through to an API handler) is a 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::Principal;

use super::error::ApiError;

pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().map(Caller).ok_or_else(|| GatewayError::Unauthenticated("missing API key".into()).into())
    }
}
