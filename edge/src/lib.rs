//! # meridian-edge
//!
//! The Cloudflare Worker every request enters. It hosts the same pipeline as the
//! regional backend, with the I/O of a Worker: `fetch` for providers and regions,
//! Durable Objects for per-tenant rate limits and the exact and semantic response caches, isolate memory
//! for breakers, `waitUntil` for usage events. All decisions come from `meridian-shared`.
//! The request path, in order, is [`pipeline::handle`].
#![cfg(target_arch = "wasm32")]

mod cache;
mod clock;
mod drive;
mod durable;
mod forward;
mod identity;
mod internal;
mod limits;
mod pipeline;
mod region;
mod respond;
mod semantic;
mod settings;
mod upstream;
mod usage;

pub use durable::{RateLimiter, ResponseCache, SemanticCache};
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    Ok(pipeline::handle(req, env, ctx).await)
}
