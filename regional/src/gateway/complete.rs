//! Step 9 for calls answered in one body (non-streamed chat, embeddings): the driver
//! (`meridian_shared::drive::Complete`) decides every attempt; this module sends it over
//! reqwest, waits, and reports what happened.

use std::time::{Duration, Instant};

use meridian_shared::api::GatewayError;
use meridian_shared::auth::Region;
use meridian_shared::drive::{Answered, Call, Complete, Context, Outbound, Start, Step};
use meridian_shared::routing::ModelRoute;
use tracing::Instrument;

use crate::http::error::ApiError;
use super::headers::Trace;
use super::upstream::{self, unix_ms, ReadError, MAX_ERROR_BODY, MAX_RESPONSE_BODY};
use crate::observability;
use crate::state::AppState;

/// Runs the call across the model's deployments: its output, the deployment that
/// produced it and its cost; or the error to return.
pub async fn run<C: Call + Sync>(st: &AppState, call: C, model: &ModelRoute, region: Option<Region>, trace: &mut Trace) -> Result<Answered<C::Output>, ApiError>
where
    C::Output: Send,
{
    let mut d = Complete::new(Context::new(&st.config, &st.router, &st.prices, model), call, model, region, Start { now_ms: unix_ms(), seed: rand::random() });
    let client = st.client(&model.route);
    loop {
        match d.next(unix_ms()) {
            Step::Wait(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                trace.upstream_ms += ms as f64;
            }
            Step::Send(o) => {
                let span = trace.attempt(&st.router, o.turn);
                let t0 = Instant::now();
                exchange(client, o, &mut d).instrument(span).await;
                trace.upstream_ms += t0.elapsed().as_secs_f64() * 1000.0;
                observability::attempts(&d.attempts().take_events(), st.region());
            }
            Step::Done(answer) => return Ok(answer),
            Step::GiveUp(e) => {
                // Attempts that never left the process (open breakers) are logged too.
                observability::attempts(&d.attempts().take_events(), st.region());
                return Err(ApiError::from(GatewayError::from_upstream(&e)).with_headers(trace.headers()));
            }
        }
    }
}

/// One attempt: send, read the whole answer within the driver's bound, report.
async fn exchange<C: Call>(client: &reqwest::Client, o: Outbound, d: &mut Complete<'_, C>) {
    let deadline = Instant::now() + Duration::from_millis(o.within_ms);
    let resp = match tokio::time::timeout_at(deadline.into(), upstream::send(client, o.request)).await {
        Err(_) => return d.on_timeout(false, unix_ms()),
        Ok(Err(e)) => return d.on_transport_error(upstream::failed(&e), unix_ms()),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let ok = (200..300).contains(&status);
    // Only an error's headers matter (Retry-After, the provider's retry hints).
    let headers = if ok { Vec::new() } else { upstream::header_pairs(resp.headers()) };
    let deadline = if ok { deadline } else { deadline.min(Instant::now() + upstream::ERROR_BODY_WITHIN) };
    match upstream::read_bounded(resp, if ok { MAX_RESPONSE_BODY } else { MAX_ERROR_BODY }, deadline).await {
        Ok(body) => d.on_response(status, &upstream::as_refs(&headers), &body, unix_ms()),
        // An error status whose body never came is still that error.
        Err(_) if !ok => d.on_response(status, &upstream::as_refs(&headers), b"", unix_ms()),
        Err(ReadError::TimedOut) => d.on_timeout(true, unix_ms()),
        Err(ReadError::Failed(e)) => d.on_transport_error(e, unix_ms()),
    }
}
