//! Who is calling: API keys (stored only as SHA-256 digests) and the principal they map to.

mod api_key;
pub mod internal;
pub mod jwt;
mod principal;
mod rbac;

pub use api_key::{bearer_token, hash_api_key, ApiKeyDigest};
pub use principal::{Principal, Region};
pub use rbac::{roles_allow, RoleConfig, RouteClass};
