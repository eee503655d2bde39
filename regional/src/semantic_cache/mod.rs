//! The semantic response cache of the regions, in one place: the store on pgvector
//! ([`store`]: nearest cached question in scope, sealed entries, expiry and the
//! per-tenant bound) and its use on the chat path ([`lookup`]: embed the question, serve a
//! hit, store a finished answer, record every lookup as metrics). The policy — scope,
//! threshold, guard — is the shared core's (`meridian_shared::cache::semantic`); the edge
//! has its own store, a Durable Object per tenant.

pub mod lookup;
pub mod store;

pub use lookup::{record, HitOrMiss, StoreLater};
pub use store::{start_purge, Lookup, SemanticCache};
