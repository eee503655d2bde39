//! Building responses: OpenAI's error envelope and the `x-meridian-*` headers.

use meridian_shared::api::GatewayError;
use worker::{Headers, Response};

/// Request-scoped facts that end up in headers and the usage event.
pub struct Trace {
    pub request_id: String,
    pub started_ms: u64,
    /// Milliseconds spent waiting on providers or in backoff: not edge overhead.
    pub upstream_ms: f64,
    pub attempts: u32,
    pub deployment: Option<String>,
    pub provider: Option<String>,
    pub cache: &'static str,
    pub cache_age_s: Option<u64>,
    /// A semantic hit's cosine similarity.
    pub cache_similarity: Option<f32>,
    /// Milliseconds the semantic lookup spent having the question embedded (home region)
    /// and in the tenant's SemanticCache object: `Server-Timing: embed, semantic`.
    pub semantic_ms: Option<(u64, u64)>,
    pub feature: Option<String>,
    /// `x-ratelimit-*` values from the limiter.
    pub limit_headers: Vec<(&'static str, String)>,
}

impl Trace {
    pub fn new(request_id: String, started_ms: u64) -> Self {
        Trace {
            request_id,
            started_ms,
            upstream_ms: 0.0,
            attempts: 0,
            deployment: None,
            provider: None,
            cache: "miss",
            cache_age_s: None,
            cache_similarity: None,
            semantic_ms: None,
            feature: None,
            limit_headers: Vec::new(),
        }
    }

    pub fn overhead_ms(&self) -> f64 {
        (crate::clock::now_ms().saturating_sub(self.started_ms) as f64 - self.upstream_ms).max(0.0)
    }

    pub fn headers(&self) -> Headers {
        let h = Headers::new();
        let _ = h.set("x-request-id", &self.request_id);
        let _ = h.set("x-meridian-attempts", &self.attempts.to_string());
        let _ = h.set("x-meridian-overhead-ms", &format!("{:.3}", self.overhead_ms()));
        let mut cache = self.cache.to_string();
        if let Some(sim) = self.cache_similarity {
            cache.push_str(&format!("; similarity={sim:.4}"));
        }
        if let Some(age) = self.cache_age_s {
            cache.push_str(&format!("; age={age}"));
        }
        let _ = h.set("x-meridian-cache", &cache);
        if let Some((embed, lookup)) = self.semantic_ms {
            let _ = h.set("server-timing", &format!("embed;dur={embed}, semantic;dur={lookup}"));
        }
        if let Some(p) = &self.provider {
            let _ = h.set("x-meridian-provider", p);
        }
        if let Some(d) = &self.deployment {
            let _ = h.set("x-meridian-deployment", d);
        }
        for (k, v) in &self.limit_headers {
            let _ = h.set(k, v);
        }
        h
    }
}

pub fn json(status: u16, body: Vec<u8>, headers: Headers) -> Response {
    let _ = headers.set("content-type", "application/json");
    match Response::from_bytes(body) {
        Ok(r) => r.with_status(status).with_headers(headers),
        Err(_) => Response::error("internal error", 500).unwrap_or_else(|_| Response::empty().expect("empty response")),
    }
}

/// An error in OpenAI's envelope, with `Retry-After` on 429s.
pub fn error(e: &GatewayError, headers: Headers) -> Response {
    if let GatewayError::RateLimited { retry_after_secs, .. } = e {
        let _ = headers.set("retry-after", &retry_after_secs.to_string());
    }
    json(e.status(), e.to_json(), headers)
}
