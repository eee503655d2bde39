//! Step 2: the body limit while reading; parsing and validation are the core's.

use axum::body::{to_bytes, Body, Bytes};
use meridian_shared::api::GatewayError;
pub use meridian_shared::api::{parse_json, validate_chat};

pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    to_bytes(body, limit).await.map_err(|e| {
        // axum reports an exceeded limit as a length-limit error in the source chain.
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = src {
            if s.is::<http_body_util::LengthLimitError>() {
                return GatewayError::PayloadTooLarge { limit };
            }
            src = s.source();
        }
        GatewayError::invalid(format!("could not read the request body: {e}"))
    })
}
