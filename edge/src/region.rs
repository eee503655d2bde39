//! Calls from the edge to a region's internal API (`/internal/*`), with the shared
//! internal secret: usage events, embeddings for the semantic cache, key resolution.

use meridian_shared::auth::Region;
use worker::{Fetch, Headers, Method, Request, RequestInit};

use crate::settings::Settings;

/// POSTs `body` (JSON) to `{region}/internal/{path}`; the status and body of the answer.
pub async fn post_internal(s: &Settings, region: Region, path: &str, body: String) -> Result<(u16, String), String> {
    let base = s.edge.regions.get(&region).ok_or_else(|| format!("no backend for region {}", region.as_str()))?;
    let secret = s.internal_secret.as_deref().ok_or("server.internal_secret_env is not configured")?;
    let h = Headers::new();
    let _ = h.set("content-type", "application/json");
    let _ = h.set("x-meridian-internal", secret);
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(h).with_body(Some(body.into()));
    let url = format!("{}/internal/{path}", base.trim_end_matches('/'));
    let req = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    let mut resp = Fetch::Request(req).send().await.map_err(|e| format!("{url}: {e}"))?;
    let text = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
    Ok((resp.status_code(), text))
}
