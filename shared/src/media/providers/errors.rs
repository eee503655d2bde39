//! Classifying media providers' errors for failover, from the status and the body's
//! message (OpenAI's envelope, Stability's `{id, name, message}`, ElevenLabs'
//! `{detail: …}`, Runway's `{error: …}`).

use serde_json::Value;

use super::MediaProviderKind;
use crate::failover::{ErrorClass, UpstreamError};
use crate::providers::parse_retry_after;

fn message(body: &[u8]) -> (String, Option<String>) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_string);
    let msg = text(&v["error"]["message"])
        .or_else(|| text(&v["message"]))
        .or_else(|| text(&v["error"]))
        .or_else(|| text(&v["detail"]["message"]))
        .or_else(|| text(&v["detail"][0]["msg"]))
        .or_else(|| text(&v["detail"]))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let code = text(&v["error"]["code"]).or_else(|| text(&v["error"]["type"])).or_else(|| text(&v["name"])).or_else(|| text(&v["detail"]["status"]));
    (msg, code)
}

pub fn classify(kind: MediaProviderKind, status: u16, retry_after: Option<&str>, body: &[u8]) -> UpstreamError {
    let (msg, code) = message(body);
    let lower = format!("{} {}", msg.to_lowercase(), code.as_deref().unwrap_or_default().to_lowercase());
    let policy = ["content_policy", "safety", "moderation", "content filter", "invalid_prompts"].iter().any(|w| lower.contains(w));
    let class = match status {
        400 | 422 if policy => ErrorClass::ContentPolicy,
        400 | 413 | 422 => ErrorClass::BadRequest,
        401 | 403 => ErrorClass::Auth,
        404 => ErrorClass::NotFound,
        429 => ErrorClass::RateLimited { retry_after_ms: retry_after.and_then(|v| parse_retry_after(&[("retry-after", v)], 0)) },
        _ => ErrorClass::Transient,
    };
    UpstreamError::new(class, Some(status), format!("{}: {msg}", kind.as_str())).with_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_error_bodies_are_classified() {
        let fixture = |p: &str| std::fs::read(format!("{}/../tests/fixtures/providers/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let e = classify(MediaProviderKind::Stability, 401, None, &fixture("stability/v1_error_401.json"));
        assert_eq!((e.class, e.message.as_str(), e.provider_code.as_deref()), (ErrorClass::Auth, "stability: missing authorization header", Some("unauthorized")));
        assert_eq!(classify(MediaProviderKind::Stability, 404, None, &fixture("stability/v1_error_404.json")).class, ErrorClass::NotFound);
        assert_eq!(classify(MediaProviderKind::Stability, 500, None, &fixture("stability/v1_error_500.json")).class, ErrorClass::Transient);
        assert_eq!(classify(MediaProviderKind::Openai, 429, Some("2"), &fixture("openai/error_429.json")).class, ErrorClass::RateLimited { retry_after_ms: Some(2000) });
        let policy = br#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_policy_violation"}}"#;
        assert_eq!(classify(MediaProviderKind::Openai, 400, None, policy).class, ErrorClass::ContentPolicy);
        let eleven = br#"{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"}]}"#;
        let e = classify(MediaProviderKind::Elevenlabs, 422, None, eleven);
        assert_eq!((e.class, e.message.as_str()), (ErrorClass::BadRequest, "elevenlabs: field required"));
    }
}
