//! The gateway's configuration: one YAML file in the spirit of LiteLLM's `model_list`.
//! Parsed with exact paths in errors (`models[1].deployments[0]: ...`) and validated
//! as a whole at load, so a running gateway never meets a dangling reference.
//! Every field is documented in `docs/CONFIG.md`.

mod control;
mod data_plane;
mod media;
mod semantic_cache;
mod principals;
mod schema;
mod validate;

pub use control::ControlSettings;
pub use data_plane::*;
pub use media::{MediaConfig, MediaDeployment, MediaLimits, MediaModel, QueueSettings};
pub use semantic_cache::SemanticCacheSettings;
pub use schema::*;
pub use validate::ConfigError;

impl Config {
    /// Parses and validates a YAML document.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ConfigError { path: if path == "." { String::new() } else { path }, message: e.into_inner().to_string() }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }
}
