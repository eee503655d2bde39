//! The authenticated caller, carried through the whole pipeline.

use serde::{Deserialize, Serialize};

/// A data-residency region. Tenant data is stored and processed only in its home region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Eu,
    Us,
}

impl Region {
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Eu => "eu",
            Region::Us => "us",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    /// Name of the API key, or the JWT subject.
    pub key_name: String,
    pub home_region: Region,
    /// Model aliases this caller's tenant may use; `*` allows all.
    pub allowed_models: Vec<String>,
    /// Roles from the JWT or the key's config; `None` is unrestricted by roles.
    pub roles: Option<Vec<String>>,
}

impl Principal {
    pub fn may_use_model(&self, model: &str) -> bool {
        self.allowed_models.iter().any(|m| m == "*" || m == model)
    }
}
