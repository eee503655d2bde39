//! A per-deployment circuit breaker: closed → open after N consecutive failures →
//! half-open after a cooldown (one probe at a time) → closed on success.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failure_threshold: 5, cooldown_ms: 30_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed { failures: u32 },
    Open { until_ms: u64 },
    HalfOpen { probe_started_ms: u64 },
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
            BreakerState::Open { until_ms } => now_ms >= until_ms,
            // A probe that has not reported within a cooldown is presumed lost.
            BreakerState::HalfOpen { probe_started_ms } => now_ms >= probe_started_ms + self.config.cooldown_ms,
        }
    }

    /// Claims the right to send: in half-open state only one probe at a time.
    pub fn try_acquire(&mut self, now_ms: u64) -> bool {
        if !self.is_available(now_ms) {
            return false;
        }
        if !matches!(self.state, BreakerState::Closed { .. }) {
            self.state = BreakerState::HalfOpen { probe_started_ms: now_ms };
        }
        true
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    pub fn on_failure(&mut self, now_ms: u64) {
        self.state = match self.state {
            BreakerState::Closed { failures } if failures + 1 < self.config.failure_threshold => BreakerState::Closed { failures: failures + 1 },
            _ => BreakerState::Open { until_ms: now_ms + self.config.cooldown_ms },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_cycle() {
        let mut b = CircuitBreaker::new(BreakerConfig { failure_threshold: 3, cooldown_ms: 100 });
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
        assert_eq!(b.state, BreakerState::Open { until_ms: 110 });
        assert!(!b.try_acquire(109));
        assert!(b.try_acquire(110), "cooldown over: one probe");
        assert!(!b.try_acquire(111), "only one probe in flight");
        b.on_failure(120);
        assert_eq!(b.state, BreakerState::Open { until_ms: 220 }, "failed probe re-opens");
        assert!(b.try_acquire(220));
        b.on_success();
        assert!(b.try_acquire(221) && b.try_acquire(221), "closed again");
    }

    #[test]
    fn lost_probe_expires() {
        let mut b = CircuitBreaker::new(BreakerConfig { failure_threshold: 1, cooldown_ms: 100 });
        b.on_failure(0);
        assert!(b.try_acquire(100));
        assert!(!b.try_acquire(150));
        assert!(b.try_acquire(200));
    }
}
