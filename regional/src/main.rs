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
mod jobs;
mod knowledge;
mod media_plane;
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
    /// Run media jobs of one queue (`image`, `audio` or `video`) until SIGTERM; scale by
    /// running more. Needs `media:` and `data_plane:` (PostgreSQL, Redis, object store).
    Worker {
        #[arg(long, env = "MERIDIAN_CONFIG")]
        config: PathBuf,
        /// The queue: image, audio or video.
        #[arg(long)]
        media: String,
        /// Concurrent jobs in this process.
        #[arg(long, default_value_t = 1)]
        concurrency: u32,
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
                if state.config.media.is_some() {
                    let media = media_plane::MediaPlane::open(&state.config, &dp).await.unwrap_or_else(|e| fail(&format!("media: {e}")));
                    state.media = Some(Arc::new(media));
                }
            } else if state.config.media.is_some() {
                fail("media: needs a data_plane section (PostgreSQL, Redis, object store)");
            }
            let state = Arc::new(state);
            usage::start(10_000, state.usage.clone(), state.data.as_ref().map(|d| d.db.clone()));
            let (workers_stop, workers_stopped) = tokio::sync::watch::channel(false);
            let in_process = state.config.media.as_ref().map_or(0, |m| m.queue.in_process_workers);
            let mut worker_tasks = Vec::new();
            if in_process > 0 {
                let cfg = Arc::new(state.config.clone());
                let stores = open_stores(&cfg).await;
                for q in media_plane::QUEUES {
                    for w in start_workers(cfg.clone(), q, in_process, &stores).await {
                        worker_tasks.push(tokio::spawn(w.run(workers_stopped.clone())));
                    }
                }
                worker_tasks.push(tokio::spawn(start_dispatcher(cfg.clone(), stores.0.clone()).await.run(workers_stopped.clone())));
            }
            let listener = tokio::net::TcpListener::bind(&state.config.server.listen).await.unwrap_or_else(|e| fail(&format!("cannot listen on {}: {e}", state.config.server.listen)));
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
            let _ = workers_stop.send(true);
            for t in worker_tasks {
                let _ = t.await;
            }
        }
        Command::Worker { config, media, concurrency } => {
            observability::init_logs();
            let cfg = Arc::new(load(&config));
            if !media_plane::QUEUES.contains(&media.as_str()) {
                fail(&format!("--media must be one of {}", media_plane::QUEUES.join(", ")));
            }
            let stores = open_stores(&cfg).await;
            usage::start(10_000, Default::default(), Some(stores.0.clone()));
            let queue = media_plane::QUEUES.into_iter().find(|q| *q == media).expect("checked above");
            let workers = start_workers(cfg.clone(), queue, concurrency.max(1), &stores).await;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let mut tasks: Vec<_> = workers.into_iter().map(|w| tokio::spawn(w.run(stopped.clone()))).collect();
            tasks.push(tokio::spawn(start_dispatcher(cfg.clone(), stores.0.clone()).await.run(stopped.clone())));
            println!("meridian-regional worker ({}) listening on queue {queue}", cfg.server.region.as_str());
            shutdown_signal().await;
            tracing::info!("shutting down: finishing or returning jobs in hand");
            let _ = stop.send(true);
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}

/// The webhook dispatcher of a worker process (every process runs one; together they
/// share the webhook stream).
/// What workers share in a process: PostgreSQL, the object store, the master key.
type WorkerStores = (meridian_regional::db::Db, meridian_regional::objects::ObjectStore, Arc<meridian_regional::crypto::Keyring>);

async fn open_stores(cfg: &Config) -> WorkerStores {
    let Some(dp) = cfg.data_plane.clone() else { fail("media workers need a data_plane section") };
    let s = data_plane::Stores::open(&dp).await.unwrap_or_else(|e| fail(&format!("data plane: {e}")));
    (s.db, s.objects, Arc::new(s.keyring))
}

async fn start_dispatcher(cfg: Arc<Config>, db: meridian_regional::db::Db) -> meridian_regional::media::webhook::Dispatcher {
    let Some(dp) = cfg.data_plane.clone() else { fail("media workers need a data_plane section") };
    let url = media_plane::redis_url(&dp).unwrap_or_else(|e| fail(&e));
    let redis = meridian_regional::media::queue::connect(&url).await.unwrap_or_else(|e| fail(&format!("cannot connect to Redis: {e}")));
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    meridian_regional::media::webhook::Dispatcher {
        name: format!("{host}-{}-webhooks", std::process::id()),
        queues: meridian_regional::media::queue::Queue::new(redis, cfg.server.region.as_str()),
        http: reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().expect("HTTP client builds"),
        config: cfg,
        db,
    }
}

/// `n` workers of `queue`, each its own consumer of the group.
async fn start_workers(cfg: Arc<Config>, queue: &'static str, n: u32, stores: &WorkerStores) -> Vec<meridian_regional::media::worker::Worker> {
    let Some(dp) = cfg.data_plane.clone() else { fail("media workers need a data_plane section") };
    if cfg.media.is_none() {
        fail("media workers need a media section");
    }
    let url = media_plane::redis_url(&dp).unwrap_or_else(|e| fail(&e));
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().expect("HTTP client builds");
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    let mut workers = Vec::new();
    for i in 0..n {
        // A connection per worker: its blocking reads must not hold up another worker's
        // heartbeats and events (commands on one connection are served in order).
        let redis = meridian_regional::media::queue::connect(&url).await.unwrap_or_else(|e| fail(&format!("cannot connect to Redis: {e}")));
        let queues = meridian_regional::media::queue::Queue::new(redis, cfg.server.region.as_str());
        queues.ensure_group(queue).await.unwrap_or_else(|e| fail(&format!("media queue {queue}: {e}")));
        workers.push(meridian_regional::media::worker::Worker {
            name: format!("{host}-{}-{queue}-{i}", std::process::id()),
            queue,
            queues,
            db: stores.0.clone(),
            keyring: stores.2.clone(),
            objects: stores.1.clone(),
            config: cfg.clone(),
            http: http.clone(),
            usage: Arc::new(usage::emit),
        });
    }
    workers
}
