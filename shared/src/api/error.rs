//! OpenAI's error envelope, `{"error":{"message","type","param","code"}}`, and the
//! gateway's own error kinds with their HTTP statuses.

use serde::{Deserialize, Serialize};

use crate::failover::{ErrorClass, UpstreamError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

/// Every error the gateway itself reports to a client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    #[error("{message}")]
    InvalidRequest { message: String, param: Option<String>, code: Option<&'static str> },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A resource other than a model (knowledge base, document, chatbot, job).
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request conflicts with the resource's state (an idempotency key reused with
    /// another request, cancelling a finished job).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` names an older version than the object's.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A change that must say which version it changes, and did not.
    #[error("{0}")]
    PreconditionRequired(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{message}")]
    RateLimited { message: String, retry_after_secs: u64 },
    #[error("{message}")]
    ContextLengthExceeded { message: String },
    #[error("{message}")]
    ContentPolicy { message: String },
    /// The upstream provider failed and no fallback could answer.
    #[error("{message}")]
    Upstream { status: u16, message: String },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl GatewayError {
    pub fn invalid(message: impl Into<String>) -> Self {
        GatewayError::InvalidRequest { message: message.into(), param: None, code: None }
    }

    pub fn invalid_param(message: impl Into<String>, param: impl Into<String>) -> Self {
        GatewayError::InvalidRequest { message: message.into(), param: Some(param.into()), code: None }
    }

    pub fn status(&self) -> u16 {
        match self {
            GatewayError::InvalidRequest { .. } | GatewayError::ContextLengthExceeded { .. } | GatewayError::ContentPolicy { .. } => 400,
            GatewayError::Unauthenticated(_) => 401,
            GatewayError::Forbidden(_) => 403,
            GatewayError::NotFound(_) | GatewayError::ResourceNotFound(_) => 404,
            GatewayError::UnsupportedMediaType(_) => 415,
            GatewayError::Conflict(_) => 409,
            GatewayError::PreconditionFailed(_) => 412,
            GatewayError::PreconditionRequired(_) => 428,
            GatewayError::PayloadTooLarge { .. } => 413,
            GatewayError::RateLimited { .. } => 429,
            GatewayError::Upstream { status, .. } => *status,
            GatewayError::Timeout(_) => 504,
            GatewayError::Unavailable(_) => 503,
            GatewayError::Internal(_) => 500,
        }
    }

    fn kind_and_code(&self) -> (&'static str, Option<String>) {
        match self {
            GatewayError::InvalidRequest { code, .. } => ("invalid_request_error", code.map(str::to_string)),
            GatewayError::Unauthenticated(_) => ("invalid_request_error", Some("invalid_api_key".into())),
            GatewayError::Forbidden(_) => ("permission_error", Some("forbidden".into())),
            GatewayError::NotFound(_) => ("invalid_request_error", Some("model_not_found".into())),
            GatewayError::ResourceNotFound(_) => ("invalid_request_error", Some("not_found".into())),
            GatewayError::UnsupportedMediaType(_) => ("invalid_request_error", Some("unsupported_media_type".into())),
            GatewayError::Conflict(_) => ("invalid_request_error", Some("conflict".into())),
            GatewayError::PreconditionFailed(_) => ("invalid_request_error", Some("precondition_failed".into())),
            GatewayError::PreconditionRequired(_) => ("invalid_request_error", Some("precondition_required".into())),
            GatewayError::PayloadTooLarge { .. } => ("invalid_request_error", Some("request_too_large".into())),
            GatewayError::RateLimited { .. } => ("rate_limit_error", Some("rate_limit_exceeded".into())),
            GatewayError::ContextLengthExceeded { .. } => ("invalid_request_error", Some("context_length_exceeded".into())),
            GatewayError::ContentPolicy { .. } => ("invalid_request_error", Some("content_policy_violation".into())),
            GatewayError::Upstream { .. } => ("upstream_error", Some("upstream_failed".into())),
            GatewayError::Timeout(_) => ("timeout_error", Some("upstream_timeout".into())),
            GatewayError::Unavailable(_) => ("server_error", Some("unavailable".into())),
            GatewayError::Internal(_) => ("server_error", None),
        }
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        let (kind, code) = self.kind_and_code();
        let param = match self {
            GatewayError::InvalidRequest { param, .. } => param.clone(),
            _ => None,
        };
        ErrorEnvelope { error: ErrorBody { message: self.to_string(), kind: kind.into(), param, code } }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.envelope()).expect("error envelope serialises")
    }

    /// What the client sees when every attempt failed: the provider's reason, with a
    /// status that says whose fault it is.
    pub fn from_upstream(e: &UpstreamError) -> GatewayError {
        let who = |m: &str| format!("{m}: {}", e.message);
        match e.class {
            ErrorClass::BadRequest => GatewayError::InvalidRequest { message: who("the provider rejected the request"), param: None, code: None },
            ErrorClass::ContextLength => GatewayError::ContextLengthExceeded { message: e.message.clone() },
            ErrorClass::ContentPolicy => GatewayError::ContentPolicy { message: who("the provider refused the content") },
            ErrorClass::RateLimited { retry_after_ms } => {
                GatewayError::RateLimited { message: who("every deployment for this model is rate limited"), retry_after_secs: retry_after_ms.map(|ms| ms.div_ceil(1000)).unwrap_or(1) }
            }
            ErrorClass::Timeout(k) => GatewayError::Timeout(format!("the provider did not answer in time ({} timeout): {}", k.as_str(), e.message)),
            ErrorClass::Auth | ErrorClass::NotFound => GatewayError::Upstream { status: 502, message: who("the gateway's provider credentials or deployment are misconfigured") },
            ErrorClass::Transient | ErrorClass::StreamBroken { .. } | ErrorClass::BreakerOpen => GatewayError::Upstream { status: 502, message: who("the provider failed") },
        }
    }
}
