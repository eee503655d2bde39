//! A per-deployment circuit breaker: closed → open after N consecutive failures →
//! half-open when the cooldown ends (one probe at a time) → closed on the probe's
//! success, or open again with a cooldown twice as long (capped) on its failure.
//!
//! Recovery bound: once a deployment is healthy again, the next probe is sent at most
//! `max_cooldown_ms` after the last failed one, so traffic is back on it within
//! `max_cooldown_ms` + the duration of one failed probe + the time until the next
//! request arrives (4 s + ε with the defaults).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// First cooldown after opening; doubles after every failed probe.
    pub cooldown_ms: u64,
    /// The longest cooldown, however many probes failed.
    pub max_cooldown_ms: u64,
    /// A probe that has not reported within this long is presumed lost, and another
    /// request may probe.
    pub probe_timeout_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failure_threshold: 5, cooldown_ms: 1_000, max_cooldown_ms: 4_000, probe_timeout_ms: 30_000 }
    }
}

impl BreakerConfig {
    /// The cooldown after `probes_failed` failed probes in a row.
    pub fn cooldown(&self, probes_failed: u32) -> u64 {
        let cap = self.max_cooldown_ms.max(self.cooldown_ms);
        self.cooldown_ms.saturating_mul(1u64 << probes_failed.min(20)).min(cap)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed { failures: u32 },
    Open { until_ms: u64, probes_failed: u32 },
    HalfOpen { probe_started_ms: u64, probes_failed: u32 },
}

impl BreakerState {
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }

    /// 0 closed, 1 half-open, 2 open: for a gauge.
    pub fn level(&self) -> u8 {
        match self {
            BreakerState::Closed { .. } => 0,
            BreakerState::HalfOpen { .. } => 1,
            BreakerState::Open { .. } => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub config: BreakerConfig,
    pub state: BreakerState,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker { config, state: BreakerState::Closed { failures: 0 } }
    }

    /// Whether a request may be sent now, without changing state.
    pub fn is_available(&self, now_ms: u64) -> bool {
        match self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until_ms, .. } => now_ms >= until_ms,
            BreakerState::HalfOpen { probe_started_ms, .. } => now_ms >= probe_started_ms.saturating_add(self.config.probe_timeout_ms),
        }
    }

    /// Claims the right to send: in half-open state only one probe at a time.
    pub fn try_acquire(&mut self, now_ms: u64) -> bool {
        if !self.is_available(now_ms) {
            return false;
        }
        match self.state {
            BreakerState::Closed { .. } => {}
            BreakerState::Open { probes_failed, .. } | BreakerState::HalfOpen { probes_failed, .. } => {
                self.state = BreakerState::HalfOpen { probe_started_ms: now_ms, probes_failed };
            }
        }
        true
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    pub fn on_failure(&mut self, now_ms: u64) {
        self.state = match self.state {
            BreakerState::Closed { failures } if failures + 1 < self.config.failure_threshold => BreakerState::Closed { failures: failures + 1 },
            BreakerState::Closed { .. } => BreakerState::Open { until_ms: now_ms + self.config.cooldown(0), probes_failed: 0 },
            // A failed probe: wait longer before the next one.
            BreakerState::HalfOpen { probes_failed, .. } => {
                let probes_failed = probes_failed.saturating_add(1);
                BreakerState::Open { until_ms: now_ms + self.config.cooldown(probes_failed), probes_failed }
            }
            // Failures reported by attempts sent before the breaker opened.
            open @ BreakerState::Open { .. } => open,
        };
    }

    /// A probe ended without saying anything about the deployment (the client left,
    /// the request was invalid): the next request may probe at once.
    pub fn release(&mut self, now_ms: u64) {
        if let BreakerState::HalfOpen { probes_failed, .. } = self.state {
            self.state = BreakerState::Open { until_ms: now_ms, probes_failed };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig { failure_threshold: 3, cooldown_ms: 100, max_cooldown_ms: 400, probe_timeout_ms: 1_000 }
    }

    #[test]
    fn full_cycle_with_growing_capped_cooldown() {
        let mut b = CircuitBreaker::new(cfg());
        for _ in 0..2 {
            assert!(b.try_acquire(0));
            b.on_failure(0);
        }
        assert_eq!(b.state, BreakerState::Closed { failures: 2 });
        b.on_success();
        assert_eq!(b.state, BreakerState::Closed { failures: 0 });
        for _ in 0..3 {
            b.on_failure(10);
        }
        assert_eq!(b.state, BreakerState::Open { until_ms: 110, probes_failed: 0 });
        assert!(!b.try_acquire(109));
        assert!(b.try_acquire(110), "cooldown over: one probe");
        assert!(!b.try_acquire(111), "only one probe in flight");
        b.on_failure(120);
        assert_eq!(b.state, BreakerState::Open { until_ms: 320, probes_failed: 1 }, "failed probe: cooldown doubled");
        assert!(b.try_acquire(320));
        b.on_failure(320);
        assert_eq!(b.state, BreakerState::Open { until_ms: 720, probes_failed: 2 });
        assert!(b.try_acquire(720));
        b.on_failure(720);
        assert_eq!(b.state, BreakerState::Open { until_ms: 1_120, probes_failed: 3 }, "capped at max_cooldown_ms");
        assert!(b.try_acquire(1_120));
        b.on_success();
        assert!(b.try_acquire(1_121) && b.try_acquire(1_121), "closed again");
        for _ in 0..3 {
            b.on_failure(2_000);
        }
        assert_eq!(b.state, BreakerState::Open { until_ms: 2_100, probes_failed: 0 }, "a new outage starts from the base cooldown");
    }

    #[test]
    fn lost_probe_expires_and_a_released_probe_frees_at_once() {
        let mut b = CircuitBreaker::new(BreakerConfig { failure_threshold: 1, ..cfg() });
        b.on_failure(0);
        assert!(b.try_acquire(100));
        assert!(!b.try_acquire(500));
        assert!(b.try_acquire(1_100), "presumed lost after probe_timeout_ms");
        b.release(1_200);
        assert!(b.try_acquire(1_200), "released: the next request probes");
        b.on_failure(1_300);
        assert_eq!(b.state, BreakerState::Open { until_ms: 1_500, probes_failed: 1 });
    }

    #[test]
    fn late_failures_do_not_extend_an_open_breaker() {
        let mut b = CircuitBreaker::new(BreakerConfig { failure_threshold: 1, ..cfg() });
        b.on_failure(0);
        b.on_failure(90);
        assert_eq!(b.state, BreakerState::Open { until_ms: 100, probes_failed: 0 });
    }

    /// The stated bound, with the default settings and a fake clock: a deployment down
    /// for 60 s, one request every 100 ms, each failing in 5 ms while it is down. Once
    /// it heals, a request reaches it again within max_cooldown_ms + one failed probe +
    /// one request interval.
    #[test]
    fn a_healed_deployment_is_found_within_the_bound() {
        let c = BreakerConfig::default();
        for recovery_ms in [3_000u64, 17_050, 60_000, 60_730] {
            let mut b = CircuitBreaker::new(c);
            let mut back = None;
            let mut t = 0;
            while t < recovery_ms + 20_000 && back.is_none() {
                if b.try_acquire(t) {
                    if t >= recovery_ms {
                        b.on_success();
                        back = Some(t);
                    } else {
                        b.on_failure(t + 5);
                    }
                }
                t += 100;
            }
            let back = back.expect("traffic came back");
            assert!(back - recovery_ms <= c.max_cooldown_ms + 5 + 100, "recovered at {recovery_ms}, used again at {back}");
        }
    }
}
