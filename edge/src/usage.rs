//! Step 11: the usage event, sent to the tenant's home region inside `waitUntil` so it
//! never delays the response.

use meridian_shared::auth::Principal;
pub use meridian_shared::usage::UsageEvent;
use worker::{Fetch, Headers, Method, Request, RequestInit};

use crate::settings::Settings;

/// Posts the event to `POST {home region}/internal/usage`.
pub async fn send(s: &Settings, p: &Principal, e: &UsageEvent) {
    let (Some(base), Some(secret)) = (s.edge.regions.get(&p.home_region), s.internal_secret.as_deref()) else { return };
    let h = Headers::new();
    let _ = h.set("content-type", "application/json");
    let _ = h.set("x-meridian-internal", secret);
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(h).with_body(Some(serde_json::to_string(e).unwrap_or_default().into()));
    let url = format!("{}/internal/usage", base.trim_end_matches('/'));
    match Request::new_with_init(&url, &init) {
        Ok(r) => match Fetch::Request(r).send().await {
            Ok(resp) if resp.status_code() < 300 => {}
            Ok(resp) => worker::console_error!("usage event refused by {url}: {}", resp.status_code()),
            Err(err) => worker::console_error!("usage event to {url} failed: {err}"),
        },
        Err(err) => worker::console_error!("usage event request: {err}"),
    }
}
