//! Response-cache policy: which requests may be cached, the tenant-scoped key over every
//! field that changes the answer, the stored entry both hosts replay, and the
//! semantic cache's scope, threshold and false-hit guard (`semantic`), and the quantised
//! in-memory index the edge's per-tenant Durable Object keeps (`semantic_index`).

mod entry;
mod key;
pub mod mode;
pub mod semantic;
pub mod semantic_index;

pub use entry::CachedAnswer;
pub use key::{cache_key, is_cacheable};
pub use mode::Mode;
