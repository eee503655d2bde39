//! OpenAI-compatible wire types: what clients send and receive, whatever provider answers.

mod chat;
mod chunk;
mod embeddings;
mod error;
mod response;

pub use chat::*;
pub use chunk::*;
pub use embeddings::*;
pub use error::*;
pub use response::*;
