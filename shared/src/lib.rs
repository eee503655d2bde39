//! # meridian-shared
//!
//! The host-agnostic, sans-I/O core of the Meridian gateway. Nothing here opens a
//! socket, spawns a task or reads a clock: hosts (the Cloudflare Worker in `edge/`
//! and the axum backend in `regional/`) feed bytes, outcomes and the current time
//! in, and get decisions and bytes out.
//!
//! | module | owns |
//! | --- | --- |
//! | [`api`] | OpenAI-compatible wire types and the error envelope |
//! | [`providers`] | per-provider request builders, response parsers, stream decoders, error classification |
//! | [`failover`] | the failover state machine: retry, fail over, continue, give up |
//! | [`drive`] | the one attempt loop every host runs around the core: plan, engine, breakers, continuation, seam check, cost |
//! | [`cache`] | exact-cache key derivation and the stored answer, replayed as JSON or SSE |
//! | [`breaker`] | circuit breakers, latency EWMA and deployment choice |
//! | [`ratelimit`] | GCRA rate-limit math |
//! | [`auth`] | API-key hashing and the authenticated principal |
//! | [`config`] | the YAML config schema and its validation |
//! | [`control`] | the control plane's rules: admin requests and their checks, the audit hash chain |
//! | [`pricing`] | the per-model price table and cost computation |
//! | [`usage`] | the usage event both hosts emit and the home region keeps |
//! | [`routing`] | model aliases → deployments, per-deployment health, the plan for one request |
//! | [`relay`] | the client side of a streamed answer: hold, commit, continue, finish |

pub mod api;
pub mod auth;
pub mod breaker;
pub mod cache;
pub mod config;
pub mod control;
pub mod drive;
pub mod failover;
pub mod media;
pub mod pricing;
pub mod providers;
pub mod relay;
pub mod routing;
pub mod ratelimit;
pub mod usage;
