//! JSON-line logs (tracing) and the Prometheus recorder.

use meridian_shared::drive::AttemptEvent;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub fn init_logs() {
    let filter = EnvFilter::try_from_env("MERIDIAN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_current_span(true).with_span_list(false).with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

const LATENCY_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

pub fn init_metrics() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .expect("valid buckets")
        .build_recorder();
    let handle = recorder.handle();
    let _ = metrics::set_global_recorder(recorder);
    handle
}

fn breaker_level(state: &str) -> f64 {
    match state {
        "closed" => 0.0,
        "half_open" => 1.0,
        _ => 2.0,
    }
}

/// Records the driver's attempt log, from this host (`via` = its region) or from the
/// edge (`via` = `edge`, delivered with the usage event): attempts by outcome, failures
/// by class, retries, provider latency, and the breaker state after each attempt
/// (0 closed, 1 half-open, 2 open; the edge's in `meridian_edge_breaker_state`).
pub fn attempts(events: &[AttemptEvent], via: &str) {
    for e in events {
        let deployment = e.deployment.clone();
        metrics::counter!("meridian_attempts_total", "deployment" => deployment.clone(), "outcome" => e.outcome.clone(), "via" => via.to_string()).increment(1);
        if e.attempt > 1 {
            metrics::counter!("meridian_retries_total", "deployment" => deployment.clone(), "via" => via.to_string()).increment(1);
        }
        if e.outcome != "breaker_open" {
            metrics::histogram!("meridian_provider_latency_seconds", "deployment" => deployment.clone()).record(e.latency_ms as f64 / 1000.0);
        }
        if !e.ok() {
            metrics::counter!("meridian_attempt_failures_total", "deployment" => deployment.clone(), "class" => e.outcome.clone()).increment(1);
            tracing::warn!(attempt = e.attempt, deployment = %e.deployment, provider = %e.provider, mode = %e.mode, outcome = %e.outcome, status = e.status, latency_ms = e.latency_ms, via, "attempt failed");
        }
        let gauge = if via == "edge" { "meridian_edge_breaker_state" } else { "meridian_breaker_state" };
        metrics::gauge!(gauge, "deployment" => deployment).set(breaker_level(&e.breaker));
    }
}
