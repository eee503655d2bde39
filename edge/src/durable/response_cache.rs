//! `ResponseCache`: a tenant's exact-cache entries (one object per tenant, and the key
//! itself starts with the tenant), with a TTL checked on read.

use meridian_shared::cache::CachedAnswer;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct ResponseCache {
    state: State,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    answer: CachedAnswer,
    expires_ms: u64,
}

#[derive(Deserialize)]
struct Put {
    key: String,
    answer: CachedAnswer,
    ttl_secs: u64,
}

impl DurableObject for ResponseCache {
    fn new(state: State, _env: Env) -> Self {
        ResponseCache { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let now = crate::clock::now_ms();
        match req.path().as_str() {
            "/get" => {
                let key = req.text().await?;
                let entry: Option<String> = storage.get(&key).await?;
                match entry.and_then(|e| serde_json::from_str::<Entry>(&e).ok()) {
                    Some(e) if e.expires_ms > now => Response::ok(serde_json::to_string(&e.answer)?),
                    Some(_) => {
                        storage.delete(&key).await?;
                        Response::error("expired", 404)
                    }
                    None => Response::error("miss", 404),
                }
            }
            "/put" => {
                let p: Put = serde_json::from_str(&req.text().await?).map_err(|e| worker::Error::RustError(e.to_string()))?;
                let entry = Entry { answer: p.answer, expires_ms: now + p.ttl_secs * 1000 };
                storage.put(&p.key, serde_json::to_string(&entry)?).await?;
                Response::ok("stored")
            }
            "/purge" => {
                storage.delete_all().await?;
                Response::ok("purged")
            }
            other => Response::error(format!("no route {other}"), 404),
        }
    }
}
