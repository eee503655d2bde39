//! Who the config says may call: principals for tenants and their API keys.

use std::collections::HashMap;

use super::{Config, TenantConfig};
use crate::auth::{ApiKeyDigest, Principal};

impl TenantConfig {
    /// A principal of this tenant: an API key's name or a JWT subject, with its roles.
    pub fn principal(&self, user: &str, roles: Option<Vec<String>>) -> Principal {
        Principal { tenant: self.id.clone(), key_name: user.to_string(), home_region: self.region, allowed_models: self.allowed_models.clone(), roles }
    }
}

impl Config {
    /// Every configured API key, by digest (digests are validated at load).
    pub fn api_key_index(&self) -> HashMap<ApiKeyDigest, Principal> {
        self.tenants
            .iter()
            .flat_map(|t| t.api_keys.iter().filter_map(move |k| Some((ApiKeyDigest::from_hex(&k.sha256)?, t.principal(&k.name, k.roles.clone())))))
            .collect()
    }

    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }
}
