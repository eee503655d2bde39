//! Rate-limit math. Hosts keep the state (Redis shared by the replicas in a region, a
//! Durable Object at the edge); this module decides.

mod gcra;
mod month;
mod reserve;
mod tenant;

pub use reserve::{estimate_tokens, HeaderPairs, Refusal};
pub use gcra::{Decision, Gcra};
pub use month::month_of;
pub use tenant::{LimitHeaders, LimiterState, ModelLimits, ReserveOutcome, ReserveRequest, TenantLimits};
