//! The control plane of the regional host: runtime objects its tenants own, stored in the
//! region's PostgreSQL under row-level security, changed only through the admin API,
//! each change recorded in the tenant's hash-chained audit log in the same transaction.
//!
//! | module | holds |
//! | --- | --- |
//! | [`keys`] | API keys: issue, list, change, rotate with an overlap, revoke, resolve |
//! | [`resolve`] | resolving a presented key (cached), for this host and the edge |
//! | [`audit`] | appending to and verifying the audit chain |
//! | [`rest`] | the admin REST routes over them |
//! | [`graphql`] | the same objects as a GraphQL schema (`/v1/graphql`) |

pub mod audit;
pub mod graphql;
pub mod keys;
pub mod resolve;
pub mod rest;
