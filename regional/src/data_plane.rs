//! The regional data plane's live handles: PostgreSQL, object storage, the embedding
//! models its tenants use behind their Redis cache, and the master key. Opened once at
//! start-up from `data_plane:`; absent when the config has no such section (a gateway-only region).
//! Opening registers the region's tenants and mirrors their API keys into PostgreSQL.

use std::path::Path;
use std::time::Duration;

use crate::crypto::Keyring;
use crate::db::{ApiKeyRow, Db};
use crate::embed::cache::{connect, CachedEmbedder};
use crate::embed::models::Models;
use crate::objects::ObjectStore;
use crate::rag::answer::Retriever;
use crate::rag::ingest::Ingestor;
use meridian_shared::config::{Config, DataPlaneConfig, EmbeddingModel, TenantConfig};

/// The stores alone (what a media worker needs): PostgreSQL with migrations applied,
/// the object store with its bucket, and the master key.
pub struct Stores {
    pub db: Db,
    pub objects: ObjectStore,
    pub keyring: Keyring,
}

impl Stores {
    pub async fn open(dp: &DataPlaneConfig) -> Result<Stores, String> {
        let keyring = Keyring::from_hex(&env(&dp.master_key_env).map_err(|e| format!("data_plane.master_key_env: {e}"))?).map_err(|e| format!("data_plane.master_key_env: {e}"))?;
        let url = env(&dp.database_url_env).map_err(|e| format!("data_plane.database_url_env: {e}"))?;
        let db = Db::connect(&url, dp.database_max_connections).await.map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
        db.migrate().await.map_err(|e| format!("migrations failed: {e}"))?;
        let objects = ObjectStore::new(&dp.objects, |v| std::env::var(v).ok()).map_err(|e| e.to_string())?;
        objects.ensure_bucket().await.map_err(|e| format!("bucket {}: {e}", dp.objects.bucket))?;
        Ok(Stores { db, objects, keyring })
    }
}

pub struct DataPlane {
    pub db: Db,
    pub objects: ObjectStore,
    pub embedder: CachedEmbedder,
    pub keyring: Keyring,
    pub settings: DataPlaneConfig,
}

fn env(var: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
}

impl DataPlane {
    /// Connects everything, applies migrations, creates the bucket if needed and registers
    /// the config's tenants homed in this region.
    pub async fn open(cfg: &Config, dp: &DataPlaneConfig) -> Result<DataPlane, String> {
        let region = cfg.server.region.as_str();
        let Stores { db, objects, keyring } = Stores::open(dp).await?;
        let homed: Vec<&TenantConfig> = cfg.tenants.iter().filter(|t| t.region.as_str() == region).collect();
        for t in &homed {
            db.create_tenant(&t.id, region).await.map_err(|e| format!("registering tenant {}: {e}", t.id))?;
            let keys: Vec<ApiKeyRow> = t.api_keys.iter().map(|k| ApiKeyRow { name: k.name.clone(), sha256: hex::decode(&k.sha256).unwrap_or_default(), roles: k.roles.clone() }).collect();
            db.sync_api_keys(&t.id, &keys).await.map_err(|e| format!("mirroring tenant {}'s API keys: {e}", t.id))?;
        }
        // Only the models this region's tenants use (an English-only region never loads E5).
        let mut wanted: Vec<EmbeddingModel> = homed.iter().map(|t| t.embedding_model()).collect();
        if wanted.is_empty() {
            wanted.push(EmbeddingModel::AllMiniLmL6V2);
        }
        let dir = Path::new(&dp.models_dir).to_path_buf();
        let models = tokio::task::spawn_blocking(move || Models::load(&dir, &wanted)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        let timeout = Duration::from_millis(dp.embeddings.cache_timeout_ms);
        let redis = match &dp.redis_url_env {
            Some(var) => Some(connect(&env(var).map_err(|e| format!("data_plane.redis_url_env: {e}"))?, timeout).await.map_err(|e| format!("cannot connect to Redis: {e}"))?),
            None => None,
        };
        let embedder = CachedEmbedder::new(models, redis, region, Duration::from_secs(dp.embeddings.cache_ttl_s));
        if cfg.semantic_cache.enabled {
            let tenants = homed.iter().map(|t| t.id.clone()).collect();
            crate::semantic_cache::start_purge(db.clone(), tenants, cfg.semantic_cache);
        }
        Ok(DataPlane { db, objects, embedder, keyring, settings: dp.clone() })
    }

    pub fn retriever(&self) -> Retriever<'_> {
        Retriever { db: &self.db, embedder: &self.embedder, keyring: &self.keyring, settings: self.settings.retrieval }
    }

    pub fn ingestor(&self) -> Ingestor<'_> {
        Ingestor { db: &self.db, objects: &self.objects, embedder: &self.embedder, keyring: &self.keyring, settings: self.settings.ingest }
    }
}
