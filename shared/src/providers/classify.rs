//! Maps provider HTTP errors onto [`ErrorClass`], keeping the provider's message.

use serde_json::Value;

use super::{ProviderKind, Wire};
use crate::failover::{ErrorClass, UpstreamError};

fn header<'a>(headers: &'a [(&str, &str)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// `Retry-After` in integer seconds or an HTTP date; `retry-after-ms` (OpenAI's SDKs
/// honour it) wins when present. Returns milliseconds from `now_ms`.
pub fn parse_retry_after(headers: &[(&str, &str)], now_ms: u64) -> Option<u64> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(ms.max(0.0) as u64);
    }
    let v = header(headers, "retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Some((secs.max(0.0) * 1000.0) as u64);
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
    Some(at_ms.saturating_sub(now_ms))
}

/// Gemini puts the delay in the body: `google.rpc.RetryInfo.retryDelay: "26s"`.
fn gemini_retry_delay(body: &Value) -> Option<u64> {
    body.pointer("/error/details")?.as_array()?.iter().find_map(|d| {
        let s = d.get("retryDelay")?.as_str()?;
        let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
        Some((secs * 1000.0) as u64)
    })
}

struct ProviderWords {
    message: String,
    code: Option<String>,
}

fn words(kind: ProviderKind, body: &Value, raw: &[u8]) -> ProviderWords {
    let s = |p: &str| body.pointer(p).and_then(Value::as_str).map(str::to_string);
    let (message, code) = match kind.wire() {
        Wire::Anthropic => (s("/error/message"), s("/error/type")),
        Wire::Gemini => (s("/error/message"), s("/error/status")),
        Wire::OpenaiCompatible(_) => {
            // Mistral's 422 uses {"detail": ...}; some servers send {"message": ...}.
            let msg = s("/error/message").or_else(|| s("/message")).or_else(|| body.get("detail").map(|d| d.to_string()));
            (msg, s("/error/code").or_else(|| s("/error/type")).or_else(|| s("/type")))
        }
    };
    let message = message.unwrap_or_else(|| String::from_utf8_lossy(&raw[..raw.len().min(512)]).into_owned());
    ProviderWords { message, code }
}

fn mentions_context_length(msg: &str, code: Option<&str>) -> bool {
    let m = msg.to_ascii_lowercase();
    code == Some("context_length_exceeded")
        || m.contains("maximum context length")
        || m.contains("context length")
        || m.contains("context window")
        || m.contains("prompt is too long")
        || m.contains("exceeds the maximum number of tokens")
}

fn mentions_content_policy(msg: &str, code: Option<&str>) -> bool {
    let m = msg.to_ascii_lowercase();
    matches!(code, Some("content_policy_violation" | "content_filter"))
        || m.contains("content management policy")
        || m.contains("content policy")
        || m.contains("safety system")
}

/// Classifies a non-2xx provider response.
pub fn classify_http_error(kind: ProviderKind, status: u16, headers: &[(&str, &str)], body: &[u8], now_ms: u64) -> UpstreamError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let w = words(kind, &json, body);
    let code = w.code.as_deref();
    let class = match status {
        400 | 422 if code == Some("INVALID_ARGUMENT") && w.message.contains("API key") => ErrorClass::Auth,
        400 | 413 | 422 if mentions_context_length(&w.message, code) => ErrorClass::ContextLength,
        400 | 422 if mentions_content_policy(&w.message, code) => ErrorClass::ContentPolicy,
        400 | 413 | 422 => ErrorClass::BadRequest,
        401 | 403 => ErrorClass::Auth,
        404 => ErrorClass::NotFound,
        429 if code == Some("insufficient_quota") => ErrorClass::Auth,
        429 => {
            let retry = parse_retry_after(headers, now_ms).or_else(|| gemini_retry_delay(&json));
            ErrorClass::RateLimited { retry_after_ms: retry }
        }
        408 | 409 | 425 => ErrorClass::Transient,
        s if s >= 500 => ErrorClass::Transient,
        _ => ErrorClass::BadRequest,
    };
    UpstreamError::new(class, Some(status), w.message).with_code(w.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/providers/");

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{FIX}{p}")).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn openai_errors() {
        let e = classify_http_error(ProviderKind::Openai, 400, &[], &fixture("openai/error_400_context_length.json"), 0);
        assert_eq!(e.class, ErrorClass::ContextLength);
        assert!(e.message.contains("maximum context length"));
        let e = classify_http_error(ProviderKind::Openai, 401, &[], &fixture("openai/error_401.json"), 0);
        assert_eq!(e.class, ErrorClass::Auth);
        assert_eq!(e.provider_code.as_deref(), Some("invalid_api_key"));
        let e = classify_http_error(ProviderKind::Openai, 429, &[("Retry-After", "3")], &fixture("openai/error_429.json"), 0);
        assert_eq!(e.class, ErrorClass::RateLimited { retry_after_ms: Some(3000) });
        let e = classify_http_error(ProviderKind::Openai, 429, &[], &fixture("openai/error_429_insufficient_quota.json"), 0);
        assert_eq!(e.class, ErrorClass::Auth);
        let e = classify_http_error(ProviderKind::Openai, 500, &[], &fixture("openai/error_500.json"), 0);
        assert_eq!(e.class, ErrorClass::Transient);
    }

    #[test]
    fn anthropic_errors() {
        let e = classify_http_error(ProviderKind::Anthropic, 529, &[], &fixture("anthropic/error_overloaded_529.json"), 0);
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(e.provider_code.as_deref(), Some("overloaded_error"));
        let e = classify_http_error(ProviderKind::Anthropic, 429, &[], &fixture("anthropic/error_429.json"), 0);
        assert_eq!(e.class, ErrorClass::RateLimited { retry_after_ms: None });
        let e = classify_http_error(ProviderKind::Anthropic, 400, &[], &fixture("anthropic/error_400.json"), 0);
        assert_eq!(e.class, ErrorClass::BadRequest);
        assert_eq!(e.provider_code.as_deref(), Some("invalid_request_error"));
    }

    #[test]
    fn gemini_errors() {
        let e = classify_http_error(ProviderKind::Gemini, 400, &[], &fixture("gemini/error_400.json"), 0);
        assert_eq!(e.class, ErrorClass::Auth, "{e:?}");
        let e = classify_http_error(ProviderKind::Gemini, 429, &[], &fixture("gemini/error_429.json"), 0);
        assert_eq!(e.class, ErrorClass::RateLimited { retry_after_ms: Some(26_000) });
        assert_eq!(e.provider_code.as_deref(), Some("RESOURCE_EXHAUSTED"));
        let e = classify_http_error(ProviderKind::Gemini, 404, &[], &fixture("gemini/error_404_unknown_model.json"), 0);
        assert_eq!(e.class, ErrorClass::NotFound);
    }

    #[test]
    fn retry_after_http_date() {
        let now_ms = 1_445_412_480_000; // Wed, 21 Oct 2015 07:28:00 GMT
        let h = [("retry-after", "Wed, 21 Oct 2015 07:28:05 GMT")];
        assert_eq!(parse_retry_after(&h, now_ms), Some(5_000));
        assert_eq!(parse_retry_after(&[("retry-after-ms", "250")], 0), Some(250));
        assert_eq!(parse_retry_after(&[("retry-after", "soon")], 0), None);
    }
}
