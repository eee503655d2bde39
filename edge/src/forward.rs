//! Step 8b: residency. RAG, chains, media and admin requests go to the tenant's home
//! region only, with the principal the edge authenticated; if that region cannot be
//! reached the answer is a 503, never another region. WebSocket upgrades (the job event
//! stream) are relayed too.

use meridian_shared::api::GatewayError;
use meridian_shared::auth::Principal;
use worker::{Fetch, Headers, Request, RequestInit, Response};

use crate::settings::Settings;

pub async fn to_home_region(mut req: Request, p: &Principal, s: &Settings) -> Result<Response, GatewayError> {
    let region = p.home_region;
    let base = s.edge.regions.get(&region).ok_or_else(|| GatewayError::Unavailable(format!("no backend is configured for region {}", region.as_str())))?;
    let secret = s.internal_secret.as_deref().ok_or_else(|| GatewayError::Internal("server.internal_secret_env is not configured".into()))?;
    let url = req.url().map_err(|e| GatewayError::invalid(e.to_string()))?;
    let target = format!("{}{}{}", base.trim_end_matches('/'), url.path(), url.query().map(|q| format!("?{q}")).unwrap_or_default());
    let h = Headers::new();
    let copy = |name: &str| req.headers().get(name).ok().flatten();
    for name in ["content-type", "accept", "x-request-id", "x-meridian-feature", "idempotency-key", "if-match", "if-none-match", "upgrade"] {
        if let Some(v) = copy(name) {
            let _ = h.set(name, &v);
        }
    }
    let _ = h.set("x-meridian-internal", secret);
    let _ = h.set("x-meridian-tenant", &p.tenant);
    let _ = h.set("x-meridian-user", &p.key_name);
    if let Some(roles) = &p.roles {
        let _ = h.set("x-meridian-roles", &roles.join(","));
    }
    let method = req.method();
    let body = if matches!(method, worker::Method::Get | worker::Method::Head) { None } else { Some(req.bytes().await.map_err(|e| GatewayError::invalid(e.to_string()))?) };
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h);
    if let Some(b) = body {
        init.with_body(Some(js_sys::Uint8Array::from(&b[..]).into()));
    }
    let fwd = Request::new_with_init(&target, &init).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let resp = Fetch::Request(fwd)
        .send()
        .await
        .map_err(|e| GatewayError::Unavailable(format!("the tenant's home region ({}) is unavailable; its data is never sent to another region: {e}", region.as_str())))?;
    // A WebSocket (the job event stream) is handed to the client as the region opened it.
    if resp.status_code() == 101 {
        if let Some(ws) = resp.websocket() {
            return Response::from_websocket(ws).map_err(|e| GatewayError::Internal(e.to_string()));
        }
        return Err(GatewayError::Unavailable("the home region accepted a WebSocket the edge could not relay".into()));
    }
    Ok(resp)
}
