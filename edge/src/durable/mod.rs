//! Durable Objects: one instance per tenant for each concern, so a tenant's state is in
//! one place and processed one request at a time.

mod rate_limiter;
mod response_cache;
mod semantic_cache;

pub use rate_limiter::RateLimiter;
pub use response_cache::ResponseCache;
pub use semantic_cache::SemanticCache;
