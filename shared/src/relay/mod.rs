//! The client-facing side of a streamed answer, as pure state machines both hosts drive.
//!
//! - [`StreamRelay`] spans the whole request: it holds chunks back until the first output
//!   chunk (so failures before it fail over invisibly), gives the client one id across
//!   attempts, remembers the text sent (for continuations) and the final usage, and
//!   writes the closing frames: usage chunk, `[DONE]`, or an in-band error.
//!   A continuation's chunks can be held behind a gate until the seam check
//!   ([`crate::drive::seam`]) accepts or discards them.
//! - [`AttemptStream`] spans one upstream attempt: it feeds bytes through the provider's
//!   decoder into the relay and says when the attempt completed, failed, or which timer
//!   (first token or idle) applies next.
//!
//! Both are driven by [`crate::drive::Stream`]; hosts never touch them directly.

mod attempt;
mod stream_relay;

pub use attempt::{AttemptStream, Step};
pub use stream_relay::StreamRelay;
