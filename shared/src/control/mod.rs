//! The control plane's rules, host-agnostic: what an admin request may contain and how it
//! is checked ([`keys`]), how long a host trusts a key it resolved through the key's
//! home region ([`key_cache`]), and the audit record with its hash chain ([`audit`]). The
//! regional backend stores them (PostgreSQL, under row-level security) and serves them.

pub mod audit;
pub mod key_cache;
pub mod keys;
