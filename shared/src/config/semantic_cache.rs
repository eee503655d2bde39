//! Settings of the semantic response cache (`semantic_cache:`), the same for both hosts:
//! the regions' pgvector store and (later) the edge's Durable Object.

use serde::{Deserialize, Serialize};

use super::EmbeddingModel;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SemanticCacheSettings {
    /// Off by default: a semantic hit answers a question that was not asked verbatim,
    /// which a deployment should choose.
    pub enabled: bool,
    /// Cosine similarity (all-MiniLM-L6-v2) at or above which a cached answer is served;
    /// a tenant may set its own, and a request may only raise it
    /// (`x-meridian-semantic-threshold`). 0.95: the lowest with < 1% false hits (guard
    /// on) in `bench-results/semantic-cache.md`.
    pub threshold: f32,
    /// The same for tenants on multilingual-e5-small, whose similarities sit higher
    /// (0.99 by the same rule).
    pub threshold_multilingual: f32,
    /// Refuse a match whose questions differ in a negation, a number or a named entity.
    pub guard: bool,
    pub ttl_secs: u64,
    /// Requests with a higher temperature are not cached (`None`: any temperature).
    pub max_temperature: Option<f32>,
    /// Cache answers to requests that offer tools (a tool call may have side effects).
    pub cache_tool_requests: bool,
    /// Entries kept per tenant; past it the least recently used go (regions: by the
    /// periodic purge, which also removes expired entries).
    pub max_entries_per_tenant: u64,
    /// How often the regions purge expired and surplus entries.
    pub purge_interval_secs: u64,
}

impl Default for SemanticCacheSettings {
    fn default() -> Self {
        SemanticCacheSettings { enabled: false, threshold: 0.95, threshold_multilingual: 0.99, guard: true, ttl_secs: 48 * 3600, max_temperature: None, cache_tool_requests: false, max_entries_per_tenant: 100_000, purge_interval_secs: 600 }
    }
}

impl SemanticCacheSettings {
    pub fn threshold_for(&self, model: EmbeddingModel) -> f32 {
        match model {
            EmbeddingModel::AllMiniLmL6V2 => self.threshold,
            EmbeddingModel::MultilingualE5Small => self.threshold_multilingual,
        }
    }
}
