//! The regional host's request limiter: requests per minute per API key. A trait, so a
//! shared store (Redis, a Durable Object) can replace this process-local one without
//! touching the layer that calls it (`gateway::ratelimit`).

use std::collections::HashMap;
use std::sync::Mutex;

use meridian_shared::ratelimit::{Decision, Gcra};

pub trait RateLimiter: Send + Sync {
    fn check(&self, key: &str, cost: u64, now_ms: u64) -> Decision;
    fn limit(&self) -> u64;
}

/// GCRA over a process-local map: exact within one process.
pub struct InMemoryLimiter {
    gcra: Gcra,
    tats: Mutex<HashMap<String, f64>>,
}

impl InMemoryLimiter {
    pub fn new(limit: u64, period_ms: u64) -> Self {
        InMemoryLimiter { gcra: Gcra::new(limit, period_ms), tats: Mutex::new(HashMap::new()) }
    }
}

impl RateLimiter for InMemoryLimiter {
    fn check(&self, key: &str, cost: u64, now_ms: u64) -> Decision {
        let mut tats = self.tats.lock().unwrap();
        let d = self.gcra.check(tats.get(key).copied(), now_ms, cost);
        if let Decision::Allow { new_tat_ms, .. } = d {
            tats.insert(key.to_string(), new_tat_ms);
        }
        d
    }

    fn limit(&self) -> u64 {
        self.gcra.limit()
    }
}

