//! OpenAI-compatible wire types: what clients send and receive, whatever provider answers.

mod chat;
mod chunk;
mod embeddings;
mod error;
mod response;
mod validate;

pub use chat::*;
pub use chunk::*;
pub use embeddings::*;
pub use error::*;
pub use response::*;
pub use validate::{parse_json, validate_chat};
