//! Residency: a tenant homed in another region is refused before anything of its request
//! is processed or stored here.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::Principal;

use crate::http::error::ApiError;
use crate::state::SharedState;

pub async fn layer(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    if let Some(p) = req.extensions().get::<Principal>() {
        if p.home_region != st.config.server.region {
            let msg = format!(
                "tenant {} is homed in region {}; this backend serves region {} and does not process its data",
                p.tenant,
                p.home_region.as_str(),
                st.config.server.region.as_str()
            );
            return ApiError::from(GatewayError::Forbidden(msg)).into_response();
        }
    }
    next.run(req).await
}
