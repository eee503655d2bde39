//! Step 11: the usage event, sent to the tenant's home region inside `waitUntil` so it
//! never delays the response.

use meridian_shared::auth::Principal;
pub use meridian_shared::usage::UsageEvent;

use crate::settings::Settings;

/// Posts the event to `POST {home region}/internal/usage`.
pub async fn send(s: &Settings, p: &Principal, e: &UsageEvent) {
    match crate::region::post_internal(s, p.home_region, "usage", serde_json::to_string(e).unwrap_or_default()).await {
        Ok((status, _)) if status < 300 => {}
        Ok((status, body)) => worker::console_error!("usage event refused by region {}: {status} {body}", p.home_region.as_str()),
        Err(err) => worker::console_error!("usage event failed: {err}"),
    }
}
