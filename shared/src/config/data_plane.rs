//! Settings of the regional data plane (`data_plane:`): where its stores are, and every
//! limit of ingest and retrieval. Only the regional backend reads them; secrets are
//! named by environment variable, never written here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPlaneConfig {
    /// Env var with the PostgreSQL URL (`postgres://user:pass@host:port/db`).
    pub database_url_env: String,
    #[serde(default = "d::pool")]
    pub database_max_connections: u32,
    /// Env var with the Redis URL (`redis://host:port/db`). Unset: no embedding cache.
    #[serde(default)]
    pub redis_url_env: Option<String>,
    pub objects: ObjectStoreConfig,
    /// Env var with the 32-byte master key (64 hex characters) that wraps tenants' data keys.
    pub master_key_env: String,
    /// Directory holding `all-minilm-l6-v2/` and `multilingual-e5-small/` (unpacked by the
    /// setup scripts). A region loads only the models its tenants use.
    pub models_dir: String,
    #[serde(default)]
    pub embeddings: EmbeddingSettings,
    #[serde(default)]
    pub ingest: IngestSettings,
    #[serde(default)]
    pub retrieval: RetrievalSettings,
}

/// The local embedding models a tenant's knowledge bases and semantic cache can use. Both
/// give 384-dimensional unit vectors, so they share one index column; a knowledge base
/// records the model it was built with and is always searched with the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EmbeddingModel {
    /// English only; the fastest.
    #[serde(rename = "all-minilm-l6-v2")]
    AllMiniLmL6V2,
    /// About 100 languages, one vector space across them.
    #[serde(rename = "multilingual-e5-small")]
    MultilingualE5Small,
}

impl EmbeddingModel {
    pub const ALL: [EmbeddingModel; 2] = [EmbeddingModel::AllMiniLmL6V2, EmbeddingModel::MultilingualE5Small];

    pub fn name(self) -> &'static str {
        match self {
            EmbeddingModel::AllMiniLmL6V2 => "all-minilm-l6-v2",
            EmbeddingModel::MultilingualE5Small => "multilingual-e5-small",
        }
    }

    pub fn from_name(name: &str) -> Option<EmbeddingModel> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The model for a tenant serving `languages` (ISO 639-1 codes): the English model
    /// when every language is English, the multilingual one otherwise.
    pub fn for_languages<S: AsRef<str>>(languages: &[S]) -> EmbeddingModel {
        if languages.iter().all(|l| l.as_ref() == "en") {
            EmbeddingModel::AllMiniLmL6V2
        } else {
            EmbeddingModel::MultilingualE5Small
        }
    }
}

/// S3 or an S3-compatible server; one bucket per region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreConfig {
    /// e.g. `http://127.0.0.1:9000`; omitted for AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub bucket: String,
    #[serde(default = "d::s3_region")]
    pub region: String,
    pub access_key_env: String,
    pub secret_key_env: String,
    /// `endpoint/bucket/key` addressing, which most local servers need.
    #[serde(default = "d::yes")]
    pub path_style: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingSettings {
    /// How long a cached embedding lives in Redis.
    pub cache_ttl_s: u64,
    /// Timeout of each Redis command; past it the vector is computed instead.
    pub cache_timeout_ms: u64,
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        EmbeddingSettings { cache_ttl_s: 48 * 3600, cache_timeout_ms: 200 }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Largest document accepted, by upload or by URL.
    pub max_document_bytes: usize,
    /// Chunk size in model tokens (clamped to the embedding model's window) and overlap.
    pub chunk_tokens: usize,
    pub chunk_overlap_tokens: usize,
    /// Most chunks one document may produce.
    pub max_chunks_per_document: usize,
    /// URL ingest: most URLs per request, and the timeout of each fetch.
    pub max_urls: usize,
    pub url_timeout_ms: u64,
    /// Allow URLs resolving to loopback/private/link-local addresses (off: no SSRF into
    /// the region's own network).
    pub allow_private_urls: bool,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            max_document_bytes: 10 * 1024 * 1024,
            chunk_tokens: 512,
            chunk_overlap_tokens: 50,
            max_chunks_per_document: 5_000,
            max_urls: 20,
            url_timeout_ms: 10_000,
            allow_private_urls: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrievalSettings {
    /// Chunks given to the model as sources.
    pub top_k: usize,
    /// Candidates taken from each of the vector and keyword lists before fusion.
    pub candidates: usize,
    /// HNSW search breadth (pgvector `hnsw.ef_search`).
    pub ef_search: u32,
    /// Below this cosine similarity of the best chunk (all-MiniLM-L6-v2), the chatbot says
    /// it does not know instead of calling a model.
    pub min_similarity: f32,
    /// The same for multilingual-e5-small, whose similarities sit higher and closer
    /// together (related question/passage pairs ~0.82–0.88, unrelated ~0.67–0.79).
    pub min_similarity_multilingual: f32,
}

impl Default for RetrievalSettings {
    fn default() -> Self {
        RetrievalSettings { top_k: 5, candidates: 40, ef_search: 100, min_similarity: 0.30, min_similarity_multilingual: 0.80 }
    }
}

impl RetrievalSettings {
    pub fn min_similarity_for(&self, model: EmbeddingModel) -> f32 {
        match model {
            EmbeddingModel::AllMiniLmL6V2 => self.min_similarity,
            EmbeddingModel::MultilingualE5Small => self.min_similarity_multilingual,
        }
    }
}

mod d {
    pub fn pool() -> u32 {
        16
    }
    pub fn s3_region() -> String {
        "us-east-1".into()
    }
    pub fn yes() -> bool {
        true
    }
}
