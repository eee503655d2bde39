//! RBAC by route class: the caller's roles must allow the class of the path (`chat`,
//! `embeddings`, `models`, `rag`, `media`, `admin`). Model grants are checked where the
//! model is known: [`super::chat::authorise`] for calls, [`super::models`] for the list.
//! The edge applies the same two checks in the same order.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{roles_allow, Principal, RouteClass};

use crate::http::error::ApiError;
use crate::state::SharedState;

pub async fn layer(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    let (Some(p), Some(class)) = (req.extensions().get::<Principal>(), RouteClass::of_path(req.uri().path())) else { return next.run(req).await };
    if !roles_allow(p.roles.as_deref(), &st.config.roles, class, None) {
        return ApiError::from(GatewayError::Forbidden(format!("this caller may not use {} routes", class.as_str()))).into_response();
    }
    next.run(req).await
}
