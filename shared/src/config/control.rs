//! `control:` — how hosts use the control plane's runtime objects.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSettings {
    /// How long the edge and the regions trust what they resolved about a runtime-issued
    /// key (found or not): the bound on how late a revocation or a changed role takes
    /// effect, and on how often a flood of random keys reaches the home region.
    pub key_cache_ms: u64,
    /// Keys remembered per isolate or process.
    pub max_cached_keys: usize,
    /// Answer GraphQL introspection queries (off: clients use docs/schema.graphql).
    pub graphql_introspection: bool,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings { key_cache_ms: 2_000, max_cached_keys: 100_000, graphql_introspection: false }
    }
}
