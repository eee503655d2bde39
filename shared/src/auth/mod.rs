//! Who is calling: API keys (stored only as SHA-256 digests) and the principal they map to.

mod api_key;
pub mod jwt;
mod principal;

pub use api_key::{bearer_token, hash_api_key, ApiKeyDigest};
pub use principal::{Principal, Region};
