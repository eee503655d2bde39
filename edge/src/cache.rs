//! Steps 6 and 11b: the exact response cache, in the tenant's `ResponseCache` Durable
//! Object. `x-meridian-cache: bypass` skips it; `refresh` skips the read but stores.

use meridian_shared::cache::CachedAnswer;
use serde_json::json;
use worker::{Env, Method, Request, RequestInit};

pub const BINDING: &str = "RESPONSE_CACHE";

pub use meridian_shared::cache::Mode;

pub fn mode(req: &Request) -> Mode {
    Mode::from_header(req.headers().get(meridian_shared::cache::mode::HEADER).ok().flatten().as_deref())
}

async fn call(env: &Env, tenant: &str, path: &str, body: String) -> worker::Result<worker::Response> {
    let stub = env.durable_object(BINDING)?.id_from_name(tenant)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    stub.fetch_with_request(Request::new_with_init(&format!("https://cache{path}"), &init)?).await
}

/// A hit, or `None` (a cache that cannot be reached is a miss, never an error).
pub async fn get(env: &Env, tenant: &str, key: &str) -> Option<CachedAnswer> {
    let mut r = call(env, tenant, "/get", key.to_string()).await.ok()?;
    if r.status_code() != 200 {
        return None;
    }
    serde_json::from_str(&r.text().await.ok()?).ok()
}

pub async fn put(env: Env, tenant: String, key: String, answer: CachedAnswer, ttl_secs: u64) {
    let body = json!({"key": key, "answer": answer, "ttl_secs": ttl_secs}).to_string();
    if let Err(e) = call(&env, &tenant, "/put", body).await {
        worker::console_error!("cache store failed: {e}");
    }
}

/// Deletes all of the tenant's entries (tenant deletion).
pub async fn purge(env: &Env, tenant: &str) -> Result<(), String> {
    match call(env, tenant, "/purge", String::new()).await {
        Ok(r) if r.status_code() == 200 => Ok(()),
        Ok(r) => Err(format!("response cache purge: {}", r.status_code())),
        Err(e) => Err(e.to_string()),
    }
}
