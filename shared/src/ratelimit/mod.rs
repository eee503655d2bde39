//! Rate-limit math. Hosts keep the state (a map in regional, a Durable Object at the
//! edge); this module decides.

mod gcra;

pub use gcra::{Decision, Gcra};
