//! Rate-limit math. Hosts keep the state (a map in regional, a Durable Object at the
//! edge); this module decides.

mod gcra;
mod month;
mod tenant;

pub use gcra::{Decision, Gcra};
pub use month::month_of;
pub use tenant::{LimitHeaders, LimiterState, ModelLimits, ReserveOutcome, ReserveRequest, TenantLimits};
