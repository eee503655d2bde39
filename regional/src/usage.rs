//! Step 11: the usage event (tenant, deployment, tokens, cost, latency), emitted off the
//! hot path through a bounded queue drained by a background task.

use std::sync::OnceLock;
use std::time::Duration;

use meridian_shared::api::Usage;
use meridian_shared::auth::Principal;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::routing::Deployment;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize)]
pub struct UsageEvent {
    pub tenant: String,
    pub api_key: String,
    pub deployment: String,
    pub provider: String,
    /// The model that answered, as the provider named it.
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: Option<f64>,
    pub latency_ms: f64,
    pub stream: bool,
}

impl UsageEvent {
    /// Prices the usage at the deployment's configured price, else the built-in table's
    /// price for the model that answered.
    pub fn new(st: &AppState, p: &Principal, d: &Deployment, model: &str, u: Usage, latency: Duration, stream: bool) -> Self {
        let cost_usd = d.price.or_else(|| st.prices.lookup(model)).map(|price| price.cost(&u));
        UsageEvent {
            tenant: p.tenant.clone(),
            api_key: p.key_name.clone(),
            deployment: d.name.clone(),
            provider: d.provider_name.clone(),
            model: model.to_string(),
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_tokens: u.cached_tokens(),
            reasoning_tokens: u.reasoning_tokens(),
            cost_usd,
            latency_ms: latency.as_secs_f64() * 1000.0,
            stream,
        }
    }
}

static QUEUE: OnceLock<mpsc::Sender<UsageEvent>> = OnceLock::new();

/// Starts the background drain. Events are logged as JSON lines on target
/// `meridian::usage` and counted in metrics.
pub fn start(capacity: usize) {
    let (tx, mut rx) = mpsc::channel::<UsageEvent>(capacity);
    if QUEUE.set(tx).is_err() {
        return;
    }
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            metrics::counter!("meridian_tokens_total", "tenant" => e.tenant.clone(), "kind" => "prompt").increment(e.prompt_tokens);
            metrics::counter!("meridian_tokens_total", "tenant" => e.tenant.clone(), "kind" => "completion").increment(e.completion_tokens);
            if let Some(c) = e.cost_usd {
                metrics::counter!("meridian_cost_microdollars_total", "tenant" => e.tenant.clone()).increment((c * 1e6).round() as u64);
            }
            tracing::info!(target: "meridian::usage", event = %serde_json::to_string(&e).unwrap_or_default(), "usage");
        }
    });
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
