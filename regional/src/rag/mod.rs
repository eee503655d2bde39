//! Retrieval-augmented generation over a tenant's knowledge base: chunking, storage of
//! sealed chunk text with its lexemes and embedding, and hybrid retrieval (HNSW cosine +
//! BM25 keyword search, fused by reciprocal rank). Every query runs in a tenant transaction, so
//! row-level security scopes it even where the SQL names no tenant.

pub mod answer;
pub mod chunk;
pub mod extract;
pub mod ingest;
pub mod keywords;
pub mod retrieve;
