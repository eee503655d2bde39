//! Response-cache policy: which requests may be cached, the tenant-scoped key over every
//! field that changes the answer, and the stored entry both hosts replay.

mod entry;
mod key;

pub use entry::CachedAnswer;
pub use key::{cache_key, is_cacheable};
