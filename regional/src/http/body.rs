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

/// One field of a multipart/form-data body.
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// The fields of a multipart/form-data body already read within its limit.
pub async fn multipart_parts(body: Bytes, boundary: String) -> Result<Vec<Part>, GatewayError> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let bad = |e: multer::Error| GatewayError::invalid(format!("malformed multipart body: {e}"));
    let mut parts = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let (name, file_name, content_type) = (field.name().unwrap_or_default().to_string(), field.file_name().map(str::to_string), field.content_type().map(|m| m.to_string()));
        parts.push(Part { name, file_name, content_type, bytes: field.bytes().await.map_err(bad)? });
    }
    Ok(parts)
}
