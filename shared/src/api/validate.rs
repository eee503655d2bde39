//! Parsing and validating client requests: pure, so both hosts give the same errors.

use serde::de::DeserializeOwned;

use super::{ChatRequest, GatewayError};
use crate::config::{Limits, UnknownFieldPolicy};

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if bytes.is_empty() {
        return Err(GatewayError::invalid("the request body is empty; send a JSON object"));
    }
    // Fast path; the slower path-tracking parse runs only to explain a failure.
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            GatewayError::invalid(format!("the request body is not valid JSON: {inner}"))
        } else if path == "." {
            GatewayError::invalid(format!("invalid request: {inner}"))
        } else {
            GatewayError::invalid_param(format!("invalid value at `{path}`: {inner}"), path)
        }
    })
}

/// Checks a chat request against the configured limits and applies the unknown-field policy.
pub fn validate_chat(req: &mut ChatRequest, limits: &Limits) -> Result<(), GatewayError> {
    if req.model.trim().is_empty() {
        return Err(GatewayError::invalid_param("`model` is required", "model"));
    }
    if req.messages.is_empty() {
        return Err(GatewayError::invalid_param("`messages` must contain at least one message", "messages"));
    }
    if req.messages.len() > limits.max_messages {
        return Err(GatewayError::invalid_param(format!("too many messages: {} (limit {})", req.messages.len(), limits.max_messages), "messages"));
    }
    if let Some(cap) = req.output_cap() {
        if cap == 0 || cap > limits.max_output_tokens {
            let p = if req.max_completion_tokens.is_some() { "max_completion_tokens" } else { "max_tokens" };
            return Err(GatewayError::invalid_param(format!("{p} must be between 1 and {}", limits.max_output_tokens), p));
        }
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(GatewayError::invalid_param("temperature must be between 0 and 2", "temperature"));
        }
    }
    if let Some(p) = req.top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err(GatewayError::invalid_param("top_p must be between 0 and 1", "top_p"));
        }
    }
    if req.n.is_some_and(|n| n != 1) {
        return Err(GatewayError::invalid_param("only n = 1 is supported", "n"));
    }
    if !req.extra.is_empty() {
        match limits.unknown_fields {
            UnknownFieldPolicy::Reject => {
                let name = req.extra.keys().next().cloned().unwrap_or_default();
                return Err(GatewayError::invalid_param(format!("unknown field `{name}`"), name));
            }
            UnknownFieldPolicy::Drop => req.extra.clear(),
            UnknownFieldPolicy::Passthrough => {}
        }
    }
    Ok(())
}
