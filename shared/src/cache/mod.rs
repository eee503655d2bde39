//! Response-cache policy: which requests may be cached, the tenant-scoped key over every
//! field that changes the answer, the stored entry both hosts replay, and the
//! semantic cache's scope, threshold and false-hit guard (`semantic`).

mod entry;
mod key;
pub mod semantic;

pub use entry::CachedAnswer;
pub use key::{cache_key, is_cacheable};
