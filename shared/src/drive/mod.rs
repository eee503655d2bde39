//! The driver: the one loop around the core that every caller of an upstream runs — chat
//! (complete and stream) on both hosts, embeddings, media jobs. It *tells* the host what
//! to do next and is *told* what happened; it never sees a socket or a timer:
//!
//! ```text
//! host                          drive::{Complete, Stream}
//!  ├─ next(now) ──────────────► Wait(ms) | Send(request, within_ms) | Done(answer) | GiveUp(error)
//!  ├─ sleep / fetch / reqwest
//!  └─ on_response / on_bytes / on_eof / on_timeout / on_transport_error(now)
//!                               → Engine, breakers, attempt log, tool-output rule,
//!                                 continuation + seam check, cost
//! ```
//!
//! [`Attempts`] is the loop itself (plan, [`crate::failover::Engine`], breaker acquire
//! and record, backoff waits, the [`AttemptEvent`] log); [`Complete`] wraps it for a
//! whole-body call ([`ChatCall`], [`EmbedCall`]); [`Stream`] for a streamed chat, with
//! the relay, the continuation of a broken stream and the [`seam`] check. Media jobs use
//! [`Attempts`] with their own [`Fleet`]. A host that decides a retry, a failover or a
//! continuation itself is a bug.

mod attempts;
mod complete;
mod context;
mod continuation;
mod log;
mod rng;
pub mod seam;
mod stream;

pub use attempts::{Attempts, Next, Turn};
pub use complete::{Answered, Call, ChatCall, Complete, EmbedCall, Outbound, Step};
pub use context::{cost, estimated_cost, transport_error, Context};
pub use continuation::{continuation, Continuation, CONTINUE_INSTRUCTION};
pub use log::AttemptEvent;
pub use rng::Rng;
pub use stream::{Finished, Read, Stream, StreamStep};

use crate::breaker::Board;

/// When a driver starts (the host's Unix milliseconds) and the seed of the randomness it
/// draws from — inputs, so the core stays deterministic.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub now_ms: u64,
    pub seed: u64,
}

/// The deployments a driver chooses among: their health, and their names for the log.
pub trait Fleet: Sync {
    fn board(&self) -> &Board;
    fn name(&self, d: usize) -> &str;
    fn provider(&self, d: usize) -> &str;
}

#[cfg(test)]
mod tests;
