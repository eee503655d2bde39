//! Whole-config validation with the exact path of each problem.

use std::collections::HashSet;

use super::Config;
use crate::auth::ApiKeyDigest;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config error at `{path}`: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { path: path.into(), message: message.into() }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, section: &str) -> Result<HashSet<&'a str>, ConfigError> {
    let mut seen = HashSet::new();
    for (i, n) in names.enumerate() {
        if n.trim().is_empty() {
            return Err(err(format!("{section}[{i}].name"), "must not be empty"));
        }
        if !seen.insert(n) {
            return Err(err(format!("{section}[{i}].name"), format!("duplicate name {n:?}")));
        }
    }
    Ok(seen)
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let providers = unique(self.providers.iter().map(|p| p.name.as_str()), "providers")?;
        let deployments = unique(self.deployments.iter().map(|d| d.name.as_str()), "deployments")?;
        unique(self.models.iter().map(|m| m.name.as_str()), "models")?;
        unique(self.tenants.iter().map(|t| t.id.as_str()), "tenants")?;
        for (i, p) in self.providers.iter().enumerate() {
            if let Some(u) = &p.base_url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(err(format!("providers[{i}].base_url"), format!("{u:?} is not an http(s) URL")));
                }
            }
            match &p.api_key_env {
                Some(e) if e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    return Err(err(format!("providers[{i}].api_key_env"), "must name an environment variable, not hold a key"));
                }
                None if p.kind.needs_key() => {
                    return Err(err(format!("providers[{i}].api_key_env"), format!("a {} provider needs an API key: name the environment variable that holds it", p.kind.as_str())));
                }
                _ => {}
            }
        }
        for (i, d) in self.deployments.iter().enumerate() {
            if !providers.contains(d.provider.as_str()) {
                return Err(err(format!("deployments[{i}].provider"), format!("no provider named {:?}", d.provider)));
            }
            if d.model.is_empty() {
                return Err(err(format!("deployments[{i}].model"), "must not be empty"));
            }
        }
        for (i, m) in self.models.iter().enumerate() {
            if m.deployments.is_empty() {
                return Err(err(format!("models[{i}].deployments"), "needs at least one deployment"));
            }
            for (j, d) in m.deployments.iter().enumerate() {
                if !deployments.contains(d.as_str()) {
                    return Err(err(format!("models[{i}].deployments[{j}]"), format!("no deployment named {d:?}")));
                }
            }
            for (j, d) in m.context_fallbacks.iter().enumerate() {
                if !deployments.contains(d.as_str()) {
                    return Err(err(format!("models[{i}].context_fallbacks[{j}]"), format!("no deployment named {d:?}")));
                }
            }
            if m.route != "default" && !self.routes.contains_key(&m.route) {
                return Err(err(format!("models[{i}].route"), format!("no route named {:?}", m.route)));
            }
        }
        for (name, r) in &self.routes {
            let t = r.timeouts;
            for (field, v) in [("connect_ms", t.connect_ms), ("first_byte_ms", t.first_byte_ms), ("first_token_ms", t.first_token_ms), ("idle_ms", t.idle_ms), ("response_ms", t.response_ms), ("total_ms", t.total_ms)] {
                if v == 0 {
                    return Err(err(format!("routes.{name}.timeouts.{field}"), "must be greater than 0"));
                }
            }
            if r.retry.max_attempts == 0 || r.retry.max_attempts_per_deployment == 0 {
                return Err(err(format!("routes.{name}.retry"), "max_attempts and max_attempts_per_deployment must be at least 1"));
            }
        }
        if self.control.key_cache_ms == 0 || self.control.key_cache_ms > 60_000 || self.control.max_cached_keys == 0 {
            return Err(err("control", "key_cache_ms must be 1 to 60000 and max_cached_keys at least 1"));
        }
        let b = &self.breaker;
        if b.failure_threshold == 0 || b.cooldown_ms == 0 || b.probe_timeout_ms == 0 {
            return Err(err("breaker", "failure_threshold, cooldown_ms and probe_timeout_ms must be at least 1"));
        }
        if b.max_cooldown_ms < b.cooldown_ms {
            return Err(err("breaker.max_cooldown_ms", format!("must be at least cooldown_ms ({})", b.cooldown_ms)));
        }
        if let Some((field, message)) = self.media.as_ref().and_then(|m| m.problems().into_iter().next()) {
            return Err(err(field, message));
        }
        let sc = &self.semantic_cache;
        if !(0.0 < sc.threshold && sc.threshold <= 1.0) {
            return Err(err("semantic_cache.threshold", "must be in (0, 1]"));
        }
        if !(0.0 < sc.threshold_multilingual && sc.threshold_multilingual <= 1.0) {
            return Err(err("semantic_cache.threshold_multilingual", "must be in (0, 1]"));
        }
        if sc.ttl_secs == 0 {
            return Err(err("semantic_cache.ttl_secs", "must be at least 1"));
        }
        if sc.max_entries_per_tenant == 0 || sc.purge_interval_secs == 0 {
            return Err(err("semantic_cache", "max_entries_per_tenant and purge_interval_secs must be at least 1"));
        }
        for (i, t) in self.tenants.iter().enumerate() {
            if t.semantic_cache_threshold.is_some_and(|x| !(0.0 < x && x <= 1.0)) {
                return Err(err(format!("tenants[{i}].semantic_cache_threshold"), "must be in (0, 1]"));
            }
            if t.languages.is_empty() {
                return Err(err(format!("tenants[{i}].languages"), "must name at least one language"));
            }
            for (l, code) in t.languages.iter().enumerate() {
                if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
                    return Err(err(format!("tenants[{i}].languages[{l}]"), "must be an ISO 639-1 code such as \"en\" or \"de\""));
                }
            }
        }
        for (i, t) in self.tenants.iter().enumerate() {
            for (j, k) in t.api_keys.iter().enumerate() {
                if ApiKeyDigest::from_hex(&k.sha256).is_none() {
                    return Err(err(format!("tenants[{i}].api_keys[{j}].sha256"), "must be 64 hex characters (the SHA-256 of the key)"));
                }
            }
        }
        for (i, t) in self.tenants.iter().enumerate() {
            for (j, k) in t.api_keys.iter().enumerate() {
                for (r, role) in k.roles.iter().flatten().enumerate() {
                    if !crate::auth::role_exists(&self.roles, role) {
                        return Err(err(format!("tenants[{i}].api_keys[{j}].roles[{r}]"), format!("no role named {role:?}")));
                    }
                }
            }
        }
        if let Some(edge) = &self.edge {
            for (region, url) in &edge.regions {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err(format!("edge.regions.{}", region.as_str()), format!("{url:?} is not an http(s) URL")));
                }
            }
        }
        if let Some(dp) = &self.data_plane {
            let (i, r) = (&dp.ingest, &dp.retrieval);
            if i.chunk_tokens < 16 || i.chunk_overlap_tokens >= i.chunk_tokens {
                return Err(err("data_plane.ingest", "chunk_tokens must be at least 16 and chunk_overlap_tokens smaller than it"));
            }
            if i.max_document_bytes == 0 || i.max_chunks_per_document == 0 || i.max_urls == 0 || i.url_timeout_ms == 0 {
                return Err(err("data_plane.ingest", "every limit must be greater than 0"));
            }
            if r.top_k == 0 || r.candidates < r.top_k || r.ef_search == 0 || !(-1.0..=1.0).contains(&r.min_similarity) || !(-1.0..=1.0).contains(&r.min_similarity_multilingual) {
                return Err(err("data_plane.retrieval", "top_k ≥ 1, candidates ≥ top_k, ef_search ≥ 1, min_similarity(_multilingual) in [-1, 1]"));
            }
            if let Some(ep) = &dp.objects.endpoint {
                if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                    return Err(err("data_plane.objects.endpoint", format!("{ep:?} is not an http(s) URL")));
                }
            }
        }
        if let Some(j) = &self.jwt {
            if j.algorithms.is_empty() {
                return Err(err("jwt.algorithms", "needs at least one algorithm"));
            }
            if j.audience.is_empty() {
                return Err(err("jwt.audience", "needs at least one audience"));
            }
        }
        let l = &self.limits;
        if l.max_body_bytes == 0 || l.max_messages == 0 || l.max_output_tokens == 0 || l.default_max_tokens == 0 {
            return Err(err("limits", "every limit must be greater than 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const OK: &str = r#"
providers:
  - { name: p, kind: openai, base_url: "http://127.0.0.1:1/v1", api_key_env: OPENAI_API_KEY }
deployments:
  - { name: d1, provider: p, model: gpt-4o }
models:
  - { name: gpt-4o, deployments: [d1] }
tenants:
  - id: t1
    region: eu
    api_keys: [{ name: k, sha256: "0000000000000000000000000000000000000000000000000000000000000000" }]
"#;

    fn path_of(yaml: &str) -> String {
        Config::from_yaml(yaml).unwrap_err().path
    }

    #[test]
    fn valid_config_loads() {
        let c = Config::from_yaml(OK).unwrap();
        assert_eq!(c.limits.max_messages, 512);
    }

    #[test]
    fn errors_name_the_exact_path() {
        assert_eq!(path_of(&OK.replace("kind: openai", "kind: openia")), "providers[0].kind");
        assert_eq!(path_of(&OK.replace("deployments: [d1]", "deployments: [d1, d2]")), "models[0].deployments[1]");
        assert_eq!(path_of(&OK.replace("provider: p,", "provider: q,")), "deployments[0].provider");
        assert_eq!(path_of(&OK.replace("\"0000", "\"zz00")), "tenants[0].api_keys[0].sha256");
        assert_eq!(path_of(&OK.replace("model: gpt-4o }", "model: gpt-4o, wieght: 2 }")), "deployments[0].wieght");
        assert_eq!(path_of(&OK.replace("api_key_env: OPENAI_API_KEY", "api_key_env: sk-live-123")), "providers[0].api_key_env");
        assert_eq!(path_of(&format!("{OK}routes:\n  default:\n    timeouts: {{ idle_ms: 0 }}\n")), "routes.default.timeouts.idle_ms");
        assert_eq!(path_of(&OK.replace("region: eu", "region: eu\n    languages: [en, German]")), "tenants[0].languages[1]");
        assert_eq!(path_of(&OK.replace("region: eu", "region: eu\n    embedding_model: minilm")), "tenants[0].embedding_model");
        assert_eq!(path_of(&OK.replace(", api_key_env: OPENAI_API_KEY", "")), "providers[0].api_key_env", "openai needs a key");
        assert_eq!(path_of(&format!("{OK}routes:\n  default:\n    retry: {{ continue_broken_streams: sometimes }}\n")), "routes.default.retry.continue_broken_streams");
        assert_eq!(path_of(&format!("{OK}breaker: {{ cooldown_ms: 5000, max_cooldown_ms: 1000 }}\n")), "breaker.max_cooldown_ms");
    }

    #[test]
    fn keyless_kinds_and_continuation_modes() {
        let keyless = OK.replace("kind: openai, base_url: \"http://127.0.0.1:1/v1\", api_key_env: OPENAI_API_KEY", "kind: vllm, base_url: \"http://127.0.0.1:1/v1\"");
        assert!(Config::from_yaml(&keyless).is_ok(), "vLLM on a private network needs no key");
        use crate::config::ContinueMode;
        for (v, m) in [("true", ContinueMode::Prefill), ("false", ContinueMode::Off), ("instruction", ContinueMode::Instruction), ("off", ContinueMode::Off)] {
            let c = Config::from_yaml(&format!("{OK}routes:\n  default:\n    retry: {{ continue_broken_streams: {v} }}\n")).unwrap();
            assert_eq!(c.routes["default"].retry.continue_broken_streams, m, "{v}");
        }
        assert_eq!(Config::from_yaml(OK).unwrap().routes.get("default").copied().unwrap_or_default().retry.continue_broken_streams, ContinueMode::Prefill);
    }

    #[test]
    fn tenant_languages_pick_the_embedding_model() {
        use crate::config::EmbeddingModel;
        let model = |extra: &str| Config::from_yaml(&OK.replace("region: eu", &format!("region: eu{extra}"))).unwrap().tenants[0].embedding_model();
        assert_eq!(model(""), EmbeddingModel::AllMiniLmL6V2, "English by default");
        assert_eq!(model("\n    languages: [en, de]"), EmbeddingModel::MultilingualE5Small);
        assert_eq!(model("\n    languages: [de]\n    embedding_model: all-minilm-l6-v2"), EmbeddingModel::AllMiniLmL6V2, "explicit choice wins");
    }
}
