//! Who is calling: API keys (stored only as SHA-256 digests) and the principal they map to.

mod api_key;
pub mod internal;
pub mod jwt;
mod principal;
mod rbac;

pub use api_key::{bearer_token, hash_api_key, key_prefix, key_region, new_api_key, ApiKeyDigest, ISSUED_KEY_PREFIX};
pub use principal::{Principal, Region};
pub use rbac::{admin_access, role_exists, roles_allow, AdminAccess, RoleConfig, RouteClass, TENANT_ADMIN, TENANT_VIEWER};
