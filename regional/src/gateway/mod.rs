//! The gateway pipeline of the regional host. The request path, in order, is listed
//! once in [`crate::app::router`]; each step lives in its own module here.

pub mod chat;
pub mod complete;
pub mod embeddings;
pub mod headers;
pub mod identity;
pub mod jwks;
pub mod models;
pub mod observe;
pub mod ratelimit;
pub mod rbac;
pub mod residency;
pub mod stream;
pub mod upstream;
