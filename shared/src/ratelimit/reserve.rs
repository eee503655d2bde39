//! What both hosts do around [`LimiterState`]: whether a tenant has limits at all, the
//! estimate a call reserves, the request for the state, and how its outcome reaches the
//! client (`x-ratelimit-*` headers, a 429 with `Retry-After`).

use super::month::month_of;
use super::tenant::{LimitHeaders, ReserveOutcome, ReserveRequest, TenantLimits};
use crate::api::{ChatRequest, GatewayError};

impl TenantLimits {
    /// No limit and no budget: nothing to reserve.
    pub fn is_empty(&self) -> bool {
        self.requests_per_minute.is_none() && self.requests_per_minute_per_key.is_none() && self.tokens_per_minute.is_none() && self.monthly_budget_usd.is_none() && self.models.is_empty()
    }
}

/// The tokens a chat call reserves: its prompt at four bytes a token, plus its output cap.
pub fn estimate_tokens(req: &ChatRequest, default_max_tokens: u32) -> u64 {
    let prompt: usize = req.messages.iter().map(|m| m.text_content().len()).sum();
    (prompt / 4) as u64 + u64::from(req.output_cap().unwrap_or(default_max_tokens))
}

impl ReserveRequest {
    /// A reservation of `tokens` and `cost_usd` for `key` on `model` at `now_ms` (Unix).
    pub fn new(key: &str, model: &str, tokens: u64, cost_usd: f64, now_ms: u64) -> Self {
        let (month, ms_to_month_end) = month_of(now_ms);
        ReserveRequest { key: key.to_string(), model: model.to_string(), estimated_tokens: tokens, estimated_cost_usd: cost_usd, month, ms_to_month_end }
    }
}

impl LimitHeaders {
    /// As `x-ratelimit-*` response headers.
    pub fn pairs(&self) -> HeaderPairs {
        let mut v = Vec::new();
        let mut put = |k: &'static str, x: Option<u64>, ms: bool| {
            if let Some(x) = x {
                v.push((k, if ms { format!("{x}ms") } else { x.to_string() }));
            }
        };
        put("x-ratelimit-limit-requests", self.limit_requests, false);
        put("x-ratelimit-remaining-requests", self.remaining_requests, false);
        put("x-ratelimit-reset-requests", self.reset_requests_ms, true);
        put("x-ratelimit-limit-tokens", self.limit_tokens, false);
        put("x-ratelimit-remaining-tokens", self.remaining_tokens, false);
        put("x-ratelimit-reset-tokens", self.reset_tokens_ms, true);
        v
    }
}

/// `x-ratelimit-*` header names and values.
pub type HeaderPairs = Vec<(&'static str, String)>;

/// A refused call: the error and the headers of the limit that refused it.
pub struct Refusal {
    pub error: GatewayError,
    pub headers: HeaderPairs,
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Self {
        Refusal { error, headers: Vec::new() }
    }
}

impl ReserveOutcome {
    /// The reservation id and headers of an admitted call, or the 429 of a refused one.
    pub fn admitted(self) -> Result<(u64, HeaderPairs), Refusal> {
        match self {
            ReserveOutcome::Admitted { reservation, headers } => Ok((reservation, headers.pairs())),
            ReserveOutcome::Denied { retry_after_ms, reason, headers } => Err(Refusal { error: GatewayError::RateLimited { message: reason, retry_after_secs: retry_after_ms.div_ceil(1000).max(1) }, headers: headers.pairs() }),
        }
    }
}
