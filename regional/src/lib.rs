//! `meridian-regional`: the regional backend. It hosts the gateway pipeline natively
//! (axum + tower; the request path is listed once, in [`app::router`]) and the region's
//! data plane: knowledge bases, documents and chatbots grounded in them (PostgreSQL +
//! pgvector, S3, Redis, local embeddings), the semantic cache, usage, and media
//! generation as durable jobs. The binary (`main.rs`) only parses arguments and calls
//! [`serve`].

pub mod admin;
pub mod app;
pub mod chatbots;
pub mod clock;
pub mod control;
pub mod crypto;
pub mod data_plane;
pub mod db;
pub mod embed;
pub mod gateway;
pub mod health;
pub mod http;
pub mod internal;
pub mod jobs;
pub mod knowledge;
pub mod limiter;
pub mod media;
pub mod media_plane;
pub mod objects;
pub mod observability;
pub mod rag;
pub mod semantic_cache;
pub mod serve;
pub mod state;
pub mod tenant_limits;
pub mod usage;
