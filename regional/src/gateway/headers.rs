//! The `x-meridian-*` headers every response carries, and the span of each attempt.

use std::time::Instant;

use meridian_shared::drive::Turn;
use meridian_shared::failover::AttemptMode;
use meridian_shared::routing::Router;

pub struct Trace {
    pub started: Instant,
    /// Time spent waiting on providers or in deliberate backoff: not gateway overhead.
    pub upstream_ms: f64,
    pub attempts: u32,
    pub deployment: Option<String>,
    pub provider: Option<String>,
    /// The caller's `x-meridian-feature` tag, carried into the usage event.
    pub feature: Option<String>,
    /// `x-ratelimit-*` of the tenant limits that applied.
    pub limit_headers: Vec<(&'static str, String)>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace { started: Instant::now(), upstream_ms: 0.0, attempts: 0, deployment: None, provider: None, feature: None, limit_headers: Vec::new() }
    }
}

impl Trace {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_feature(mut self, h: &axum::http::HeaderMap) -> Self {
        self.feature = h.get("x-meridian-feature").and_then(|v| v.to_str().ok()).map(str::to_string);
        self
    }

    /// Notes the attempt the driver asked for; returns its tracing span (attempt,
    /// deployment, provider, continuation).
    pub fn attempt(&mut self, router: &Router, turn: Turn) -> tracing::Span {
        let d = &router.deployments[turn.deployment];
        self.attempts = turn.attempt;
        self.deployment = Some(d.name.clone());
        self.provider = Some(d.provider_name.clone());
        tracing::info_span!("attempt", attempt = turn.attempt, deployment = %d.name, provider = d.kind.as_str(), continuation = turn.mode == AttemptMode::Continue)
    }

    pub fn overhead_ms(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1000.0 - self.upstream_ms).max(0.0)
    }

    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("x-meridian-attempts", self.attempts.to_string()), ("x-meridian-overhead-ms", format!("{:.3}", self.overhead_ms())), ("x-meridian-cache", "miss".into())];
        if let Some(p) = &self.provider {
            h.push(("x-meridian-provider", p.clone()));
        }
        if let Some(d) = &self.deployment {
            h.push(("x-meridian-deployment", d.clone()));
        }
        h.extend(self.limit_headers.iter().cloned());
        h
    }
}
