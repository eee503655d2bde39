//! Library side of the regional backend: what its binary and the integration tests share.

pub mod clock;
pub mod crypto;
pub mod db;
pub mod embed;
pub mod media;
pub mod objects;
pub mod rag;
pub mod semantic_cache;
