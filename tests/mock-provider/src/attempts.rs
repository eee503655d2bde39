//! The log of attempts the mock received, so tests can count retries and measure gaps.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub seq: u64,
    /// Milliseconds since the mock started (monotonic).
    pub at_ms: f64,
    pub wire: &'static str,
    pub path: String,
    pub model: String,
    pub stream: bool,
    /// The last message's text, for checking continuations.
    pub last_message: String,
    pub message_count: usize,
    /// The system instructions as the provider's wire carries them (OpenAI `system`
    /// messages, Anthropic `system`, Gemini `systemInstruction`), joined.
    pub system: String,
    /// The request carried an API key in its wire's place.
    pub credential: bool,
    /// How a streamed answer ended: `completed`, `client_gone` (the caller dropped the
    /// connection before the end), or the fault that ended it (`cut`, `stall`,
    /// `malformed`, `error_event`). Unset while streaming, and for whole answers.
    pub ended: Option<String>,
}

pub struct Log {
    started: Instant,
    attempts: Mutex<Vec<Attempt>>,
    /// Per model: first request time (flapping) and request count (fail_first).
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

const KEEP: usize = 100_000;

impl Log {
    pub fn new() -> Self {
        Log { started: Instant::now(), attempts: Mutex::new(Vec::new()), seen: Mutex::new(HashMap::new()) }
    }

    /// Records an attempt; returns (seconds since this model was first seen, prior count,
    /// its sequence number).
    pub fn record(&self, mut a: Attempt) -> (f64, u64, u64) {
        let now = Instant::now();
        a.at_ms = now.duration_since(self.started).as_secs_f64() * 1000.0;
        let mut v = self.attempts.lock().unwrap();
        a.seq = v.last().map(|l| l.seq + 1).unwrap_or(1);
        if v.len() >= KEEP {
            v.drain(..KEEP / 2);
        }
        let seq = a.seq;
        v.push(a.clone());
        drop(v);
        let mut seen = self.seen.lock().unwrap();
        let e = seen.entry(a.model.clone()).or_insert((now, 0));
        let prior = e.1;
        e.1 += 1;
        (now.duration_since(e.0).as_secs_f64(), prior, seq)
    }

    /// Notes how the streamed answer of attempt `seq` ended.
    pub fn end(&self, seq: u64, how: &str) {
        if let Some(a) = self.attempts.lock().unwrap().iter_mut().rev().find(|a| a.seq == seq) {
            // The first cause wins (a malformed frame, then the caller hanging up).
            a.ended.get_or_insert_with(|| how.to_string());
        }
    }

    pub fn list(&self, model_contains: Option<&str>) -> Vec<Attempt> {
        let v = self.attempts.lock().unwrap();
        v.iter().filter(|a| model_contains.is_none_or(|m| a.model.contains(m))).cloned().collect()
    }

    pub fn clear(&self) {
        self.attempts.lock().unwrap().clear();
        self.seen.lock().unwrap().clear();
    }
}

pub fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
