//! Wall-clock time, for timestamps that leave the process (events, signatures, queue
//! due times, OpenAI `created` fields). Durations use `Instant`.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn unix_secs() -> u64 {
    unix_ms() / 1000
}
