//! `RateLimiter`: a tenant's [`LimiterState`], mutated synchronously (so concurrent
//! requests are decided one after another, exactly). It is persisted when a call is
//! settled — when money is spent — not on every reservation: if the object is evicted,
//! at most the current minute's request windows restart, never the month's spending.

use std::cell::RefCell;

use meridian_shared::ratelimit::{LimiterState, ReserveRequest, TenantLimits};
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const KEY: &str = "limiter";

#[durable_object]
pub struct RateLimiter {
    state: State,
    limiter: RefCell<Option<LimiterState>>,
}

#[derive(Deserialize)]
struct Reserve {
    limits: TenantLimits,
    request: ReserveRequest,
}

#[derive(Deserialize)]
struct Settle {
    limits: TenantLimits,
    reservation: u64,
    tokens: u64,
    cost_usd: f64,
}

impl RateLimiter {
    async fn loaded(&self) -> Result<()> {
        if self.limiter.borrow().is_none() {
            let stored: Option<LimiterState> = self.state.storage().get(KEY).await?;
            let mut slot = self.limiter.borrow_mut();
            if slot.is_none() {
                *slot = Some(stored.unwrap_or_default());
            }
        }
        Ok(())
    }

    async fn persist(&self) -> Result<()> {
        let snapshot = self.limiter.borrow().clone();
        self.state.storage().put(KEY, snapshot).await
    }
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter { state, limiter: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.loaded().await?;
        let now = crate::clock::now_ms();
        let body = req.text().await?;
        match req.path().as_str() {
            "/reserve" => {
                let r: Reserve = serde_json::from_str(&body).map_err(|e| worker::Error::RustError(e.to_string()))?;
                let outcome = self.limiter.borrow_mut().get_or_insert_with(Default::default).reserve(&r.limits, &r.request, now);
                Response::ok(serde_json::to_string(&outcome)?)
            }
            "/settle" => {
                let s: Settle = serde_json::from_str(&body).map_err(|e| worker::Error::RustError(e.to_string()))?;
                self.limiter.borrow_mut().get_or_insert_with(Default::default).settle(&s.limits, s.reservation, s.tokens, s.cost_usd);
                self.persist().await?;
                Response::ok("{}")
            }
            other => Response::error(format!("no route {other}"), 404),
        }
    }
}
