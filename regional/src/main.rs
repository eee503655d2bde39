//! `meridian-regional`: the regional backend. It hosts the gateway pipeline natively
//! (axum + tower) and the region's data plane: knowledge bases, documents and chatbots
//! grounded in them (PostgreSQL + pgvector, S3, Redis, local embeddings).

mod admin;
mod app;
mod chatbots;
mod data_plane;
mod gateway;
mod health;
mod internal;
mod knowledge;
mod observability;
mod state;
mod usage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use meridian_shared::auth::hash_api_key;
use meridian_shared::config::Config;

#[derive(Parser)]
#[command(about = "Meridian regional backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway.
    Serve {
        /// The YAML config (see docs/CONFIG.md).
        #[arg(long, env = "MERIDIAN_CONFIG")]
        config: PathBuf,
        /// Overrides `server.listen`.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Print the SHA-256 digest of an API key, for `tenants[].api_keys[].sha256`.
    HashKey { key: String },
    /// Validate a config file and exit.
    CheckConfig { config: PathBuf },
    /// Validate a config file and print it as one line of JSON (for a Worker var).
    ConfigJson { config: PathBuf },
}

fn load(path: &PathBuf) -> Config {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
    Config::from_yaml(&text).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
}

fn fail(msg: &str) -> ! {
    eprintln!("meridian-regional: {msg}");
    std::process::exit(2)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Command::HashKey { key } => println!("{}", hash_api_key(&key).to_hex()),
        Command::ConfigJson { config } => println!("{}", serde_json::to_string(&load(&config)).expect("config serialises")),
        Command::CheckConfig { config } => {
            load(&config);
            println!("{}: ok", config.display());
        }
        Command::Serve { config, listen } => {
            observability::init_logs();
            let metrics = observability::init_metrics();
            let mut cfg = load(&config);
            if let Some(l) = listen {
                cfg.server.listen = l;
            }
            let drain = Duration::from_millis(cfg.server.drain_timeout_ms);
            let mut state = state::AppState::new(cfg).unwrap_or_else(|e| fail(&e));
            if let Some(dp) = state.config.data_plane.clone() {
                let opened = data_plane::DataPlane::open(&state.config, &dp).await.unwrap_or_else(|e| fail(&format!("data plane: {e}")));
                state.data = Some(Arc::new(opened));
            }
            let state = Arc::new(state);
            usage::start(10_000, state.usage.clone(), state.data.as_ref().map(|d| d.db.clone()));
            let listener = tokio::net::TcpListener::bind(&state.config.server.listen)
                .await
                .unwrap_or_else(|e| fail(&format!("cannot listen on {}: {e}", state.config.server.listen)));
            let addr = listener.local_addr().expect("bound address");
            println!("meridian-regional ({}) listening on http://{addr}", state.config.server.region.as_str());
            tracing::info!(%addr, region = state.config.server.region.as_str(), "listening");
            let app = app::router(state, metrics);
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                shutdown_signal().await;
                tracing::info!(drain_ms = drain.as_millis() as u64, "shutting down: draining in-flight requests");
                let _ = stop_tx.send(());
            });
            let deadline = async move {
                let _ = stop_rx.await;
                tokio::time::sleep(drain).await;
            };
            tokio::select! {
                r = server => if let Err(e) = r { fail(&format!("server error: {e}")) },
                _ = deadline => tracing::warn!("drain timeout reached; closing remaining streams"),
            }
        }
    }
}
