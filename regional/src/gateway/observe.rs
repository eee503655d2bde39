//! Request counts and durations per route and status, for Prometheus.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

pub async fn layer(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("meridian_requests_total", "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("meridian_request_duration_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    resp
}
