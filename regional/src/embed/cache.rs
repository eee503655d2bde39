//! A Redis cache of embeddings in front of the models, keyed by region, tenant, model, role
//! and the SHA-256 of the text (`meridian:{region}:emb:{tenant}:{model}:{q|p}:{sha256}`), values the
//! vector as little-endian f32 bytes, with a TTL (48 h by default). Tenant-scoped like
//! every other cache, so no tenant can learn from timing what another has embedded.
//! Redis being down degrades to computing every vector, never to a failed request.

use std::time::Duration;

use bytes::Bytes;
use fred::prelude::*;
use sha2::{Digest, Sha256};

use meridian_shared::config::EmbeddingModel;

use super::models::Models;
use super::{EmbedError, Role};

pub struct CachedEmbedder {
    models: Models,
    redis: Option<Client>,
    region: String,
    ttl: Duration,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: usize,
    pub misses: usize,
}

/// Connects to Redis at `url` (`redis://host:port/db`), failing fast if it is unreachable.
pub async fn connect(url: &str, timeout: Duration) -> Result<Client, Error> {
    let config = Config::from_url(url)?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = timeout;
            c.internal_command_timeout = timeout;
        })
        .with_performance_config(|p| p.default_command_timeout = timeout)
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build()?;
    client.init().await?;
    Ok(client)
}

fn key(region: &str, tenant: &str, model: &str, role: Role, text: &str) -> String {
    let role = match role {
        Role::Query => "q",
        Role::Passage => "p",
    };
    format!("meridian:{region}:emb:{tenant}:{model}:{role}:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8], dims: usize) -> Option<Vec<f32>> {
    (b.len() == dims * 4).then(|| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

impl CachedEmbedder {
    pub fn new(models: Models, redis: Option<Client>, region: &str, ttl: Duration) -> Self {
        CachedEmbedder { models, redis, region: region.to_string(), ttl }
    }

    pub fn models(&self) -> &Models {
        &self.models
    }

    /// Vectors of `model` for `texts` as `role`, on behalf of `tenant`: cached ones from
    /// Redis, the rest computed on a blocking thread and written back.
    pub async fn embed(&self, tenant: &str, which: EmbeddingModel, role: Role, texts: &[String]) -> Result<(Vec<Vec<f32>>, CacheStats), EmbedError> {
        let model = self.models.get(which)?.clone();
        let dims = model.dims();
        let keys: Vec<String> = texts.iter().map(|t| key(&self.region, tenant, model.model(), role, t)).collect();
        let mut found: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        if let (Some(redis), false) = (&self.redis, keys.is_empty()) {
            match redis.mget::<Vec<Option<Bytes>>, _>(keys.clone()).await {
                Ok(values) => {
                    for (slot, v) in found.iter_mut().zip(values) {
                        *slot = v.and_then(|b| from_bytes(&b, dims));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "embedding cache read failed; computing"),
            }
        }
        let missing: Vec<usize> = (0..texts.len()).filter(|i| found[*i].is_none()).collect();
        let stats = CacheStats { hits: texts.len() - missing.len(), misses: missing.len() };
        if !missing.is_empty() {
            let todo: Vec<String> = missing.iter().map(|i| texts[*i].clone()).collect();
            let computed = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = todo.iter().map(String::as_str).collect();
                model.embed_as(&refs, role)
            })
            .await
            .map_err(|e| EmbedError::Run(e.to_string()))??;
            if let Some(redis) = &self.redis {
                let pipe = redis.pipeline();
                let ttl = Expiration::EX(self.ttl.as_secs().max(1) as i64);
                for (i, v) in missing.iter().zip(&computed) {
                    let _: Result<(), _> = pipe.set::<(), _, _>(keys[*i].as_str(), Bytes::from(to_bytes(v)), Some(ttl.clone()), None, false).await;
                }
                if let Err(e) = pipe.all::<Vec<Value>>().await {
                    tracing::warn!(error = %e, "embedding cache write failed");
                }
            }
            for (i, v) in missing.into_iter().zip(computed) {
                found[i] = Some(v);
            }
        }
        Ok((found.into_iter().map(|v| v.expect("every slot filled")).collect(), stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_region_tenant_and_model() {
        let a = key("eu", "acme", "m", Role::Passage, "hello");
        assert!(a.starts_with("meridian:eu:emb:acme:m:p:"));
        assert_ne!(a, key("eu", "globex", "m", Role::Passage, "hello"));
        assert_ne!(a, key("us", "acme", "m", Role::Passage, "hello"));
        assert_ne!(a, key("eu", "acme", "m2", Role::Passage, "hello"));
        assert_ne!(a, key("eu", "acme", "m", Role::Query, "hello"));
    }

    #[test]
    fn vectors_round_trip_through_bytes() {
        let v = vec![0.25f32, -1.5, 3.0];
        assert_eq!(from_bytes(&to_bytes(&v), 3), Some(v));
        assert_eq!(from_bytes(&[0, 0, 0], 3), None);
    }
}
