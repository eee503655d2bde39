//! The commands that need the region's stores: `serve` (the gateway and its data plane,
//! with optional in-process media workers), `worker` (media workers of one queue) and
//! `audit verify`. The long-running two start everything, run until SIGTERM or Ctrl-C,
//! then shut down in order: stop accepting,
//! drain in-flight streams within `server.drain_timeout_ms`, let workers finish or return
//! the job in hand.

use std::sync::Arc;
use std::time::Duration;

use meridian_shared::config::Config;

use crate::data_plane::DataPlane;
use crate::media::fleet;
use crate::media_plane::{MediaPlane, QUEUES};
use crate::state::AppState;
use crate::{app, observability, usage};

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

/// `meridian-regional serve`.
pub async fn serve(cfg: Config) -> Result<(), String> {
    let metrics = observability::init_metrics();
    let drain = Duration::from_millis(cfg.server.drain_timeout_ms);
    let mut state = AppState::new(cfg)?;
    if let Some(dp) = state.config.data_plane.clone() {
        state.data = Some(Arc::new(DataPlane::open(&state.config, &dp).await.map_err(|e| format!("data plane: {e}"))?));
        if let Ok(url) = crate::media_plane::redis_url(&dp) {
            let redis = crate::media::queue::connect(&url).await.map_err(|e| format!("cannot connect to Redis for tenant limits: {e}"))?;
            state.tenant_limits = crate::tenant_limits::TenantLimiter::shared(redis, state.region());
        }
        if state.config.media.is_some() {
            state.media = Some(Arc::new(MediaPlane::open(&state.config, &dp).await.map_err(|e| format!("media: {e}"))?));
        }
    } else if state.config.media.is_some() {
        return Err("media: needs a data_plane section (PostgreSQL, Redis, object store)".into());
    }
    let state = Arc::new(state);
    usage::start(10_000, state.usage.clone(), state.data.as_ref().map(|d| d.db.clone()));
    let (workers_stop, workers_stopped) = tokio::sync::watch::channel(false);
    let in_process = state.config.media.as_ref().map_or(0, |m| m.queue.in_process_workers);
    let mut worker_tasks = Vec::new();
    if in_process > 0 {
        let cfg = Arc::new(state.config.clone());
        let process = fleet::Process::open(cfg.clone()).await?;
        for q in QUEUES {
            for w in process.workers(q, in_process).await? {
                worker_tasks.push(tokio::spawn(w.run(workers_stopped.clone())));
            }
        }
        worker_tasks.push(tokio::spawn(process.dispatcher().await?.run(workers_stopped.clone())));
    }
    let listener = tokio::net::TcpListener::bind(&state.config.server.listen).await.map_err(|e| format!("cannot listen on {}: {e}", state.config.server.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("meridian-regional ({}) listening on http://{addr}", state.region());
    tracing::info!(%addr, region = state.region(), "listening");
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
        r = server => r.map_err(|e| format!("server error: {e}"))?,
        _ = deadline => tracing::warn!("drain timeout reached; closing remaining streams"),
    }
    let _ = workers_stop.send(true);
    for t in worker_tasks {
        let _ = t.await;
    }
    Ok(())
}

/// `meridian-regional worker --media QUEUE --concurrency N`.
pub async fn work(cfg: Config, queue: &str, concurrency: u32) -> Result<(), String> {
    let queue = QUEUES.into_iter().find(|q| *q == queue).ok_or_else(|| format!("--media must be one of {}", QUEUES.join(", ")))?;
    let cfg = Arc::new(cfg);
    let process = fleet::Process::open(cfg.clone()).await?;
    usage::start(10_000, Default::default(), Some(process.db.clone()));
    let workers = process.workers(queue, concurrency.max(1)).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks: Vec<_> = workers.into_iter().map(|w| tokio::spawn(w.run(stopped.clone()))).collect();
    tasks.push(tokio::spawn(process.dispatcher().await?.run(stopped.clone())));
    println!("meridian-regional worker ({}) listening on queue {queue}", cfg.server.region.as_str());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing or returning jobs in hand");
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

/// `meridian-regional audit verify`: every tenant homed in this region (or `only`);
/// prints one line per tenant; false when a chain is broken.
pub async fn verify_audit(cfg: Config, only: Option<&str>) -> Result<bool, String> {
    let dp = cfg.data_plane.as_ref().ok_or("audit verify needs a data_plane section")?;
    let stores = crate::data_plane::Stores::open(dp).await.map_err(|e| format!("data plane: {e}"))?;
    let tenants: Vec<&str> = cfg.tenants.iter().filter(|t| t.region == cfg.server.region && only.is_none_or(|o| o == t.id)).map(|t| t.id.as_str()).collect();
    if let Some(o) = only.filter(|_| tenants.is_empty()) {
        return Err(format!("no tenant {o:?} is homed in region {}", cfg.server.region.as_str()));
    }
    let mut intact = true;
    for t in tenants {
        match crate::control::audit::verify(&stores.db, t).await.map_err(|e| format!("reading the audit log of {t}: {e}"))? {
            Ok(n) => println!("{t}: ok ({n} records)"),
            Err(b) => {
                intact = false;
                println!("{t}: BROKEN at record {}: {}", b.seq, b.reason);
            }
        }
    }
    Ok(intact)
}
