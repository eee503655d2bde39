//! `POST /v1/embeddings`, routed and failed over like chat.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use meridian_shared::api::{EmbeddingsRequest, GatewayError};
use meridian_shared::auth::Principal;

use super::chat::authorise;
use crate::http::error::ApiError;
use super::headers::Trace;
use super::complete;
use crate::http::body;
use crate::state::SharedState;

pub async fn handle(State(st): State<SharedState>, req: Request) -> Response {
    let mut trace = Trace::new();
    let Some(principal) = req.extensions().get::<Principal>().cloned() else {
        return ApiError::from(GatewayError::Unauthenticated("missing API key".into())).into_response();
    };
    let result = async {
        let bytes = body::read_body(req.into_body(), st.config.limits.max_body_bytes).await?;
        let body: EmbeddingsRequest = body::parse_json(&bytes)?;
        if body.input.is_empty() {
            return Err(ApiError::from(GatewayError::invalid_param("`input` must not be empty", "input")));
        }
        let model = authorise(&st, &principal, meridian_shared::auth::RouteClass::Embeddings, &body.model)?;
        let region = st.tenant_in_region_only(&principal.tenant).then_some(principal.home_region);
        Ok(complete::run(&st, meridian_shared::drive::EmbedCall(&body), model, region, &mut trace).await?.output)
    }
    .await;
    match result {
        Ok(resp) => {
            let mut out = axum::Json(resp).into_response();
            for (k, v) in trace.headers() {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    out.headers_mut().insert(k, v);
                }
            }
            out
        }
        Err(e) => e.into_response(),
    }
}

