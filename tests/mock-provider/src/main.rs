//! `meridian-mock`: a fast, deterministic, fault-injecting stand-in for the OpenAI,
//! Anthropic and Gemini APIs, speaking each wire format exactly — and for the media
//! providers (OpenAI images/speech/transcription, Stability, ElevenLabs, a Runway-style
//! video task API), answering with real PNG, MP3, WAV and MP4 files (`media`).
//!
//! ```text
//! meridian-mock --listen 127.0.0.1:0      # prints "meridian-mock listening on http://ADDR"
//! ```
//! Faults are chosen per request by the model name (`gpt-4o@status=503,retry_after=2`),
//! the `x-mock-fault` header, or a `--faults` YAML file mapping model → directives.
//! `GET /_mock/attempts?model=X` lists what was received; `DELETE /_mock/attempts` clears.

// Handlers return early with a finished `Response` as the error: that is the point.
#![allow(clippy::result_large_err)]

mod anthropic;
mod attempts;
mod conn;
mod content;
mod faults;
mod gemini;
mod handler;
mod media;
mod openai;
mod script;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use clap::Parser;

use crate::conn::{ResetHandle, ResettableListener};

#[derive(Parser)]
#[command(about = "Fault-injecting mock of the OpenAI, Anthropic and Gemini APIs")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9100", env = "MERIDIAN_MOCK_LISTEN")]
    listen: String,
    /// YAML map of model name → fault directives applied to every request for that model.
    #[arg(long)]
    faults: Option<std::path::PathBuf>,
    /// Default number of answer tokens.
    #[arg(long, default_value_t = 12)]
    tokens: usize,
    /// Serve this file at `GET /_idp/jwks.json` (re-read on every request, so tests can
    /// rotate keys): the mock doubles as the identity provider's JWKS endpoint.
    #[arg(long)]
    jwks: Option<std::path::PathBuf>,
}

pub struct State {
    pub jwks: Option<std::path::PathBuf>,
    pub log: attempts::Log,
    pub faults: HashMap<String, String>,
    pub tokens: usize,
    /// Video tasks by id.
    pub tasks: std::sync::Mutex<HashMap<String, media::VideoTask>>,
}

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let faults = match &args.faults {
        Some(p) => {
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        }
        None => HashMap::new(),
    };
    let state = Arc::new(State { jwks: args.jwks, log: attempts::Log::new(), faults, tokens: args.tokens, tasks: Default::default() });
    let app = Router::new()
        .route("/v1/chat/completions", post(handler::openai_chat))
        .route("/chat/completions", post(handler::openai_chat))
        .route("/v1/embeddings", post(handler::openai_embeddings))
        .route("/v1/models", get(handler::models))
        .route("/v1/messages", post(handler::anthropic_messages))
        .route("/v1beta/models/{*model_action}", post(handler::gemini))
        .route("/v1/images/generations", post(media::openai_images))
        .route("/v1/audio/speech", post(media::openai_speech))
        .route("/v1/audio/transcriptions", post(media::openai_transcriptions))
        .route("/v1/generation/{engine}/text-to-image", post(media::stability_text_to_image))
        .route("/v1/text-to-speech/{voice}", post(media::elevenlabs_speech))
        .route("/v1/text_to_video", post(media::runway_submit))
        .route("/v1/tasks/{id}", get(media::runway_task))
        .route("/_mock/media/{file}", get(media::runway_download))
        .route("/_mock/attempts", get(handler::list_attempts).delete(handler::clear_attempts))
        .route("/_idp/jwks.json", get(handler::jwks))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(&args.listen).await.unwrap_or_else(|e| panic!("cannot listen on {}: {e}", args.listen));
    let addr = listener.local_addr().expect("bound address");
    println!("meridian-mock listening on http://{addr}");
    axum::serve(ResettableListener(listener), app.into_make_service_with_connect_info::<ResetHandle>())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("server runs");
}
