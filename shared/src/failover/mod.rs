//! The failover engine: a pure state machine that decides, after each attempt, whether
//! to retry, fail over, continue a broken stream elsewhere, or give up. The host
//! performs the attempts and reports outcomes with the current time.

mod backoff;
mod class;
mod engine;

pub use backoff::backoff_ms;
pub use class::{ErrorClass, TimeoutKind, UpstreamError};
pub use engine::{Action, AttemptMode, Engine, OnTransient, Outcome, Plan, RetryPolicy};
