//! Deployment health: circuit breakers, latency EWMA, and the choice of which
//! deployment to try first. The math lives here; the state lives where the host keeps
//! it (process memory in regional, a Durable Object or isolate memory at the edge).

mod board;
mod circuit;
mod ewma;
mod pick;

pub use board::Board;
pub use circuit::{BreakerConfig, BreakerState, CircuitBreaker};
pub use ewma::Ewma;
pub use pick::{order_candidates, Candidate};
