//! What the driver reports about each attempt. Hosts turn these into metrics, traces and
//! logs with one function each; the edge sends its own with the usage event, so the home
//! region records them through the same function as its own.

use serde::{Deserialize, Serialize};

/// One attempt, as it ended. Never carries prompt or answer text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptEvent {
    /// 1-based, across all deployments of the request.
    pub attempt: u32,
    pub deployment: String,
    pub provider: String,
    /// `fresh`, or `continue` for the continuation of a broken stream.
    pub mode: String,
    /// The backoff waited before it.
    pub waited_ms: u64,
    /// From sending to the outcome (a stream: to its end or its break).
    pub latency_ms: u64,
    /// `ok`, `breaker_open`, `seam_rejected`, or the failure's class (`transient`, `timeout`, …).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The deployment's breaker after this attempt: `closed`, `half_open` or `open`.
    pub breaker: String,
}

impl AttemptEvent {
    pub fn ok(&self) -> bool {
        self.outcome == "ok"
    }
}
