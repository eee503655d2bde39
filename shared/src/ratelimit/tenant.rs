//! A tenant's limits as one state value: requests and tokens per minute (per tenant,
//! per key, per model) and a monthly cost budget, reserved before a call and settled
//! with real usage after. Applied atomically by the host (a Durable Object per tenant at
//! the edge), so limits are exact under any concurrency.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Decision, Gcra};

const MINUTE_MS: u64 = 60_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelLimits {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimits {
    /// All of the tenant's requests.
    pub requests_per_minute: Option<u64>,
    /// Per API key or JWT subject.
    pub requests_per_minute_per_key: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    pub monthly_budget_usd: Option<f64>,
    /// Per model alias.
    pub models: BTreeMap<String, ModelLimits>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub key: String,
    pub model: String,
    /// Prompt estimate plus the output cap.
    pub estimated_tokens: u64,
    pub estimated_cost_usd: f64,
    /// `YYYY-MM` of now, from the host's clock; a new month resets the budget.
    pub month: String,
    /// Milliseconds until the month ends (the Retry-After of an exhausted budget).
    pub ms_to_month_end: u64,
}

/// `x-ratelimit-*` values for the tightest request and token limits that applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitHeaders {
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub reset_requests_ms: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_tokens_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReserveOutcome {
    Admitted { reservation: u64, headers: LimitHeaders },
    Denied { retry_after_ms: u64, reason: String, headers: LimitHeaders },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reservation {
    model: String,
    tokens: u64,
    cost_usd: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimiterState {
    tats: BTreeMap<String, f64>,
    month: String,
    spent_usd: f64,
    pending: BTreeMap<u64, Reservation>,
    next_id: u64,
}

struct Check {
    slot: String,
    gcra: Gcra,
    cost: u64,
    tokens: bool,
    what: String,
}

impl LimiterState {
    pub fn spent_usd(&self) -> f64 {
        self.spent_usd
    }

    pub fn pending_usd(&self) -> f64 {
        self.pending.values().map(|r| r.cost_usd).sum()
    }

    fn checks(limits: &TenantLimits, req: &ReserveRequest) -> Vec<Check> {
        let mut v = Vec::new();
        let mut add = |slot: String, limit: Option<u64>, cost: u64, tokens: bool, what: String| {
            if let Some(l) = limit {
                v.push(Check { slot, gcra: Gcra::new(l, MINUTE_MS), cost, tokens, what });
            }
        };
        let m = limits.models.get(&req.model).cloned().unwrap_or_default();
        add("rpm".into(), limits.requests_per_minute, 1, false, "requests per minute for this tenant".into());
        add(format!("rpm:key:{}", req.key), limits.requests_per_minute_per_key, 1, false, "requests per minute for this key".into());
        add(format!("rpm:model:{}", req.model), m.requests_per_minute, 1, false, format!("requests per minute for model {}", req.model));
        add("tpm".into(), limits.tokens_per_minute, req.estimated_tokens, true, "tokens per minute for this tenant".into());
        add(format!("tpm:model:{}", req.model), m.tokens_per_minute, req.estimated_tokens, true, format!("tokens per minute for model {}", req.model));
        v
    }

    /// Reserves capacity for one call, or refuses it without changing anything.
    pub fn reserve(&mut self, limits: &TenantLimits, req: &ReserveRequest, now_ms: u64) -> ReserveOutcome {
        if self.month != req.month {
            self.month.clone_from(&req.month);
            self.spent_usd = 0.0;
        }
        let mut headers = LimitHeaders::default();
        let mut admitted = Vec::new();
        for c in Self::checks(limits, req) {
            match c.gcra.check(self.tats.get(&c.slot).copied(), now_ms, c.cost) {
                Decision::Allow { new_tat_ms, remaining, reset_ms } => {
                    let (l, r, reset) = if c.tokens {
                        (&mut headers.limit_tokens, &mut headers.remaining_tokens, &mut headers.reset_tokens_ms)
                    } else {
                        (&mut headers.limit_requests, &mut headers.remaining_requests, &mut headers.reset_requests_ms)
                    };
                    if r.is_none_or(|x| remaining < x) {
                        *l = Some(c.gcra.limit());
                        *r = Some(remaining);
                        *reset = Some(reset_ms);
                    }
                    admitted.push((c.slot, new_tat_ms));
                }
                Decision::Deny { retry_after_ms, reset_ms } => {
                    if c.tokens {
                        headers.limit_tokens = Some(c.gcra.limit());
                        headers.remaining_tokens = Some(0);
                        headers.reset_tokens_ms = Some(reset_ms);
                    } else {
                        headers.limit_requests = Some(c.gcra.limit());
                        headers.remaining_requests = Some(0);
                        headers.reset_requests_ms = Some(reset_ms);
                    }
                    let reason = if c.cost > c.gcra.limit() {
                        format!("this request needs {} tokens, more than the limit of {} {}", c.cost, c.gcra.limit(), c.what)
                    } else {
                        format!("rate limit reached: {} {}", c.gcra.limit(), c.what)
                    };
                    return ReserveOutcome::Denied { retry_after_ms, reason, headers };
                }
            }
        }
        if let Some(budget) = limits.monthly_budget_usd {
            let committed = self.spent_usd + self.pending_usd();
            if committed + req.estimated_cost_usd > budget {
                let reason = format!("monthly budget of ${budget:.2} reached (spent ${:.4}, reserved ${:.4})", self.spent_usd, self.pending_usd());
                return ReserveOutcome::Denied { retry_after_ms: req.ms_to_month_end, reason, headers };
            }
        }
        for (slot, tat) in admitted {
            self.tats.insert(slot, tat);
        }
        self.next_id += 1;
        let id = self.next_id;
        self.pending.insert(id, Reservation { model: req.model.clone(), tokens: req.estimated_tokens, cost_usd: req.estimated_cost_usd });
        ReserveOutcome::Admitted { reservation: id, headers }
    }

    /// Replaces a reservation's estimate with what was really used (zero for a failed
    /// call). Unknown reservations are ignored, so settling twice is harmless.
    pub fn settle(&mut self, limits: &TenantLimits, reservation: u64, actual_tokens: u64, actual_cost_usd: f64) {
        let Some(r) = self.pending.remove(&reservation) else { return };
        self.spent_usd += actual_cost_usd;
        let delta = actual_tokens as f64 - r.tokens as f64;
        let m = limits.models.get(&r.model).cloned().unwrap_or_default();
        for (slot, limit) in [("tpm".to_string(), limits.tokens_per_minute), (format!("tpm:model:{}", r.model), m.tokens_per_minute)] {
            if let (Some(l), Some(tat)) = (limit, self.tats.get_mut(&slot)) {
                *tat += delta * Gcra::new(l, MINUTE_MS).emission_ms();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(tokens: u64, cost: f64) -> ReserveRequest {
        ReserveRequest { key: "k".into(), model: "m".into(), estimated_tokens: tokens, estimated_cost_usd: cost, month: "2026-11".into(), ms_to_month_end: 5_000 }
    }

    #[test]
    fn exactly_the_limit_is_admitted() {
        let limits = TenantLimits { requests_per_minute: Some(5), ..Default::default() };
        let mut s = LimiterState::default();
        let admitted = (0..20).filter(|_| matches!(s.reserve(&limits, &req(1, 0.0), 0), ReserveOutcome::Admitted { .. })).count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn per_model_and_per_key_limits() {
        let mut limits = TenantLimits { requests_per_minute_per_key: Some(2), ..Default::default() };
        limits.models.insert("m".into(), ModelLimits { requests_per_minute: Some(1), tokens_per_minute: None });
        let mut s = LimiterState::default();
        assert!(matches!(s.reserve(&limits, &req(1, 0.0), 0), ReserveOutcome::Admitted { .. }));
        match s.reserve(&limits, &req(1, 0.0), 0) {
            ReserveOutcome::Denied { reason, .. } => assert!(reason.contains("model m"), "{reason}"),
            o => panic!("{o:?}"),
        }
        let mut other = req(1, 0.0);
        other.model = "other".into();
        assert!(matches!(s.reserve(&limits, &other, 0), ReserveOutcome::Admitted { .. }));
        assert!(matches!(s.reserve(&limits, &other, 0), ReserveOutcome::Denied { .. }), "key limit of 2");
    }

    #[test]
    fn tokens_reserved_then_settled_with_real_usage() {
        let limits = TenantLimits { tokens_per_minute: Some(1_000), ..Default::default() };
        let mut s = LimiterState::default();
        let ReserveOutcome::Admitted { reservation, headers } = s.reserve(&limits, &req(800, 0.0), 0) else { panic!() };
        assert_eq!(headers.remaining_tokens, Some(200));
        assert!(matches!(s.reserve(&limits, &req(300, 0.0), 0), ReserveOutcome::Denied { .. }), "800 reserved, 300 more do not fit");
        s.settle(&limits, reservation, 100, 0.0);
        assert!(matches!(s.reserve(&limits, &req(300, 0.0), 0), ReserveOutcome::Admitted { .. }), "only 100 really used");
    }

    #[test]
    fn budget_reserved_settled_and_reset_monthly() {
        let limits = TenantLimits { monthly_budget_usd: Some(1.0), ..Default::default() };
        let mut s = LimiterState::default();
        let ReserveOutcome::Admitted { reservation, .. } = s.reserve(&limits, &req(1, 0.6), 0) else { panic!() };
        match s.reserve(&limits, &req(1, 0.6), 0) {
            ReserveOutcome::Denied { retry_after_ms, reason, .. } => {
                assert_eq!(retry_after_ms, 5_000);
                assert!(reason.contains("monthly budget"));
            }
            o => panic!("{o:?}"),
        }
        s.settle(&limits, reservation, 10, 0.1);
        s.settle(&limits, reservation, 10, 0.1);
        assert!((s.spent_usd() - 0.1).abs() < 1e-12, "settling twice counts once");
        assert!(matches!(s.reserve(&limits, &req(1, 0.6), 0), ReserveOutcome::Admitted { .. }));
        let mut next = req(1, 0.9);
        next.month = "2026-12".into();
        s.pending.clear();
        assert!(matches!(s.reserve(&limits, &next, 0), ReserveOutcome::Admitted { .. }), "new month, new budget");
    }
}
