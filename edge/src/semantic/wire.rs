//! What the Worker and the `SemanticCache` Durable Object exchange (JSON).

use meridian_shared::cache::semantic::Lookup;
use meridian_shared::cache::CachedAnswer;
use serde::{Deserialize, Serialize};

/// The cache's bounds, from the Worker's configuration.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Limits {
    pub max_entries: usize,
    pub ttl_s: u64,
}

#[derive(Serialize, Deserialize)]
pub struct LookupRequest {
    pub scope: String,
    pub question: String,
    pub embedding: Vec<f32>,
    pub threshold: f32,
    pub guard: bool,
    pub limits: Limits,
}

#[derive(Serialize, Deserialize)]
pub struct StoreRequest {
    pub scope: String,
    pub question: String,
    pub embedding: Vec<f32>,
    pub answer: CachedAnswer,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    Hit { answer: CachedAnswer, similarity: f32, age_s: u64 },
    Miss(Lookup),
}
