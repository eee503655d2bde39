//! The gateway pipeline of the regional host. The request path, in order, is listed
//! once in [`crate::app::router`]; each step lives in its own module here.

pub mod attempt;
pub mod auth;
pub mod chat;
pub mod complete;
pub mod embeddings;
pub mod error;
pub mod headers;
pub mod models;
pub mod observe;
pub mod ratelimit;
pub mod request;
pub mod semantic;
pub mod stream;
