//! Generic Cell Rate Algorithm: one timestamp of state per key (the theoretical arrival
//! time, TAT), exact under any interleaving when applied atomically by the host.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gcra {
    /// Time one unit of quota takes to replenish, in milliseconds (as f64 for sub-ms rates).
    emission_ms: f64,
    /// How far ahead of now the TAT may run: the burst.
    tolerance_ms: f64,
    limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Admitted; store `new_tat_ms`. `remaining` is the quota left for the window.
    Allow { new_tat_ms: f64, remaining: u64, reset_ms: u64 },
    /// Refused; nothing changes. Retry after `retry_after_ms`.
    Deny { retry_after_ms: u64, reset_ms: u64 },
}

impl Gcra {
    /// `limit` units per `period_ms`, all of which may be used in one burst.
    pub fn new(limit: u64, period_ms: u64) -> Self {
        let limit = limit.max(1);
        let emission_ms = period_ms as f64 / limit as f64;
        Gcra { emission_ms, tolerance_ms: emission_ms * limit as f64, limit }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn emission_ms(&self) -> f64 {
        self.emission_ms
    }

    /// Decides whether `cost` units may pass at `now_ms` given the stored TAT.
    pub fn check(&self, tat_ms: Option<f64>, now_ms: u64, cost: u64) -> Decision {
        let now = now_ms as f64;
        let tat = tat_ms.unwrap_or(now).max(now);
        let new_tat = tat + self.emission_ms * cost as f64;
        let allow_at = new_tat - self.tolerance_ms;
        if allow_at > now {
            return Decision::Deny { retry_after_ms: (allow_at - now).ceil() as u64, reset_ms: (tat - now).ceil() as u64 };
        }
        let used = ((new_tat - now) / self.emission_ms).ceil() as u64;
        Decision::Allow { new_tat_ms: new_tat, remaining: self.limit.saturating_sub(used), reset_ms: (new_tat - now).ceil() as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_burst_then_steady_rate() {
        let g = Gcra::new(10, 60_000);
        let mut tat = None;
        for i in 0..10 {
            match g.check(tat, 0, 1) {
                Decision::Allow { new_tat_ms, remaining, .. } => {
                    assert_eq!(remaining, 9 - i);
                    tat = Some(new_tat_ms);
                }
                d => panic!("request {i} denied: {d:?}"),
            }
        }
        match g.check(tat, 0, 1) {
            Decision::Deny { retry_after_ms, .. } => assert_eq!(retry_after_ms, 6_000),
            d => panic!("11th admitted: {d:?}"),
        }
        assert!(matches!(g.check(tat, 5_999, 1), Decision::Deny { .. }));
        assert!(matches!(g.check(tat, 6_000, 1), Decision::Allow { .. }));
    }

    #[test]
    fn cost_larger_than_limit_never_passes() {
        let g = Gcra::new(100, 1_000);
        assert!(matches!(g.check(None, 0, 101), Decision::Deny { .. }));
        assert!(matches!(g.check(None, 0, 100), Decision::Allow { remaining: 0, .. }));
    }
}
