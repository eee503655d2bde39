//! Step 11: usage events (the shared [`UsageEvent`]) emitted off the hot path through a
//! bounded queue, drained by a background task that logs, counts and keeps them per
//! tenant for `GET /v1/admin/usage`, and — where the region has a data plane — writes
//! them in batches to Postgres (`usage_events`, and the [`rollup`] counters every usage
//! report reads; one tenant transaction per tenant per batch). Events the edge sends
//! arrive through `POST /internal/usage` and join the same path.

pub mod rollup;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use meridian_shared::api::Usage;
use meridian_shared::auth::Principal;
pub use meridian_shared::usage::UsageEvent;
use tokio::sync::mpsc;

use meridian_shared::routing::Deployment;

use crate::gateway::headers::Trace;

/// Events kept per tenant in memory for the admin report (Postgres keeps them all).
const KEEP_PER_TENANT: usize = 10_000;

#[derive(Default)]
pub struct UsageStore {
    by_tenant: Mutex<HashMap<String, VecDeque<UsageEvent>>>,
}

impl UsageStore {
    pub fn add(&self, e: UsageEvent) {
        let mut m = self.by_tenant.lock().unwrap();
        let q = m.entry(e.tenant.clone()).or_default();
        if q.len() == KEEP_PER_TENANT {
            q.pop_front();
        }
        q.push_back(e);
    }

    /// Only ever one tenant's events.
    pub fn for_tenant(&self, tenant: &str) -> Vec<UsageEvent> {
        self.by_tenant.lock().unwrap().get(tenant).map(|q| q.iter().cloned().collect()).unwrap_or_default()
    }
}

/// The event for a request answered `via` this region in one body, with the cost the
/// driver computed.
pub fn answered(via: &str, p: &Principal, trace: &Trace, d: &Deployment, model: &str, u: Usage, cost_usd: Option<f64>) -> UsageEvent {
    let mut e = UsageEvent::for_principal(p, via, trace.feature.clone());
    e.answered_by(&d.name, &d.provider_name, model).tokens(&u);
    e.cost_usd = cost_usd;
    e.latency_ms = trace.started.elapsed().as_secs_f64() * 1000.0;
    e
}

static QUEUE: OnceLock<mpsc::Sender<UsageEvent>> = OnceLock::new();

/// Most events written to Postgres in one batch.
const BATCH: usize = 500;

/// Writes a batch, grouped by tenant, each group in that tenant's transaction.
async fn persist(db: &crate::db::Db, batch: &[UsageEvent]) {
    let mut by_tenant: HashMap<&str, Vec<&UsageEvent>> = HashMap::new();
    for e in batch {
        by_tenant.entry(e.tenant.as_str()).or_default().push(e);
    }
    for (tenant, tenant_events) in by_tenant {
        let events: Vec<String> = tenant_events.iter().map(|e| serde_json::to_string(e).unwrap_or_default()).collect();
        let groups = rollup::group(&tenant_events);
        let write = async {
            let mut tx = db.tenant_tx(tenant).await?;
            rollup::add(&mut tx, tenant, &groups).await?;
            sqlx::query("INSERT INTO usage_events (tenant_id, event) SELECT $1, e::jsonb FROM unnest($2::text[]) e").bind(tenant).bind(&events).execute(&mut *tx).await?;
            // The users behind them (API key names, JWT subjects).
            sqlx::query(
                "INSERT INTO users (tenant_id, subject, requests) SELECT $1, e::jsonb->>'user', count(*) FROM unnest($2::text[]) e GROUP BY 2
                 ON CONFLICT (tenant_id, subject) DO UPDATE SET last_seen = now(), requests = users.requests + excluded.requests",
            )
            .bind(tenant)
            .bind(&events)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        if let Err(e) = write.await {
            metrics::counter!("meridian_usage_events_unpersisted_total").increment(events.len() as u64);
            tracing::error!(error = %e, tenant, n = events.len(), "usage events not written to Postgres");
        }
    }
}

/// Starts the background drain into `store` (and Postgres, with `db`).
pub fn start(capacity: usize, store: Arc<UsageStore>, db: Option<crate::db::Db>) {
    let (tx, mut rx) = mpsc::channel::<UsageEvent>(capacity);
    if QUEUE.set(tx).is_err() {
        return;
    }
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            if let Some(db) = &db {
                persist(db, &batch).await;
            }
            for e in batch.drain(..) {
                record(&store, e);
            }
        }
    });
}

fn record(store: &UsageStore, e: UsageEvent) {
    metrics::counter!("meridian_tokens_total", "tenant" => e.tenant.clone(), "kind" => "prompt").increment(e.prompt_tokens);
    metrics::counter!("meridian_tokens_total", "tenant" => e.tenant.clone(), "kind" => "completion").increment(e.completion_tokens);
    if let Some(c) = e.cost_usd {
        metrics::counter!("meridian_cost_microdollars_total", "tenant" => e.tenant.clone()).increment((c * 1e6).round() as u64);
    }
    tracing::info!(target: "meridian::usage", event = %serde_json::to_string(&e).unwrap_or_default(), "usage");
    store.add(e);
}

pub fn emit(e: UsageEvent) {
    match QUEUE.get() {
        Some(q) => {
            if q.try_send(e).is_err() {
                metrics::counter!("meridian_usage_events_dropped_total").increment(1);
            }
        }
        None => tracing::warn!("usage queue not started"),
    }
}
