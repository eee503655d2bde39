//! [`Board`]: the health of a set of deployments — a circuit breaker and a latency EWMA
//! each — shared by every request of one host process or isolate. Chat and embedding
//! deployments have one (in [`crate::routing::Router`]), media deployments another.

use std::sync::Mutex;

use super::{BreakerConfig, BreakerState, CircuitBreaker, Ewma};
use crate::failover::ErrorClass;

struct Cell {
    breaker: CircuitBreaker,
    latency: Ewma,
}

pub struct Board {
    cells: Vec<Mutex<Cell>>,
}

impl Board {
    pub fn new(deployments: usize, config: BreakerConfig) -> Self {
        Board { cells: (0..deployments).map(|_| Mutex::new(Cell { breaker: CircuitBreaker::new(config), latency: Ewma::new(0.2) })).collect() }
    }

    fn cell(&self, d: usize) -> std::sync::MutexGuard<'_, Cell> {
        // A panic while holding the lock cannot leave a breaker half-updated: every
        // update is a single assignment.
        self.cells[d].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub fn state(&self, d: usize) -> BreakerState {
        self.cell(d).breaker.state
    }

    /// Whether the breaker lets a request through now (no state change).
    pub fn available(&self, d: usize, now_ms: u64) -> bool {
        self.cell(d).breaker.is_available(now_ms)
    }

    pub fn latency_ms(&self, d: usize) -> Option<f64> {
        self.cell(d).latency.value()
    }

    /// Claims the right to send (a probe slot when the breaker is not closed).
    pub fn acquire(&self, d: usize, now_ms: u64) -> bool {
        self.cell(d).breaker.try_acquire(now_ms)
    }

    /// The deployment answered; `latency_ms` to its first output.
    pub fn success(&self, d: usize, latency_ms: f64) -> BreakerState {
        let mut c = self.cell(d);
        c.breaker.on_success();
        c.latency.observe(latency_ms);
        c.breaker.state
    }

    /// A failure; it counts against the deployment only if its class says something
    /// about the deployment's health (otherwise a probe is released).
    pub fn failure(&self, d: usize, class: ErrorClass, now_ms: u64) -> BreakerState {
        let mut c = self.cell(d);
        if class.counts_against_deployment() {
            c.breaker.on_failure(now_ms);
        } else {
            c.breaker.release(now_ms);
        }
        c.breaker.state
    }

    /// The attempt was abandoned (the client left) before it said anything.
    pub fn release(&self, d: usize, now_ms: u64) {
        self.cell(d).breaker.release(now_ms);
    }
}
