//! A tenant's limits and budget on the regional host — requests and tokens per minute
//! (per tenant, key and model) and the monthly budget, reserved before a call and settled
//! with its real usage — decided by the same core math as the edge's Durable Object
//! (`meridian_shared::ratelimit::LimiterState`). The state lives in Redis, shared by every
//! replica of the region, and is changed by compare-and-set: read, decide in Rust, write
//! only if nobody wrote in between (else decide again), so N replicas admit exactly the
//! limit, not N times it. Without Redis the state is process-local (exact for one replica).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{KeysInterface, LuaInterface};
use meridian_shared::api::GatewayError;
use meridian_shared::ratelimit::{LimiterState, ReserveOutcome, ReserveRequest, TenantLimits};

/// How long a tenant's state outlives its last change (a month's spending, plus margin).
const STATE_TTL_MS: u64 = 40 * 86_400_000;
/// Attempts of one compare-and-set before giving up (each loses only to another writer).
const MAX_TRIES: usize = 64;

const COMPARE_AND_SET: &str = "local cur = redis.call('GET', KEYS[1])
    if cur == false then cur = '' end
    if cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end
    return 0";

/// An admitted call's reservation, to settle afterwards.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub tenant: String,
    pub id: u64,
    pub limits: TenantLimits,
}

enum Store {
    Local(Mutex<HashMap<String, LimiterState>>),
    Redis { client: Client, prefix: String },
}

pub struct TenantLimiter {
    store: Store,
}

fn unavailable(e: impl std::fmt::Display) -> GatewayError {
    tracing::error!(error = %e, "tenant limiter unavailable");
    GatewayError::Unavailable("the rate limiter is unavailable; try again".into())
}

impl TenantLimiter {
    /// Exact within this process only.
    pub fn local() -> Self {
        TenantLimiter { store: Store::Local(Mutex::default()) }
    }

    /// Shared by every replica of `region` using this Redis.
    pub fn shared(client: Client, region: &str) -> Self {
        TenantLimiter { store: Store::Redis { client, prefix: format!("meridian:{region}:limits:") } }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.store, Store::Redis { .. })
    }

    /// Applies `f` to the tenant's state atomically; returns what `f` returned.
    async fn update<T>(&self, tenant: &str, f: impl Fn(&mut LimiterState) -> T) -> Result<T, GatewayError> {
        match &self.store {
            Store::Local(m) => {
                let mut map = m.lock().unwrap_or_else(|p| p.into_inner());
                Ok(f(map.entry(tenant.to_string()).or_default()))
            }
            Store::Redis { client, prefix } => {
                let key = format!("{prefix}{tenant}");
                for attempt in 0..MAX_TRIES {
                    let current: Option<String> = client.get(&key).await.map_err(unavailable)?;
                    let mut state: LimiterState = match &current {
                        Some(text) => serde_json::from_str(text).map_err(unavailable)?,
                        None => LimiterState::default(),
                    };
                    let out = f(&mut state);
                    let next = serde_json::to_string(&state).map_err(unavailable)?;
                    let args = vec![current.unwrap_or_default(), next, STATE_TTL_MS.to_string()];
                    let written: i64 = client.eval(COMPARE_AND_SET, vec![key.clone()], args).await.map_err(unavailable)?;
                    if written == 1 {
                        return Ok(out);
                    }
                    metrics::counter!("meridian_tenant_limit_conflicts_total").increment(1);
                    // Another replica wrote first: decide again on its state, after a short,
                    // growing, jittered pause so the writers spread out.
                    tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % (200 * (attempt as u64 + 1)))).await;
                }
                Err(unavailable("too many concurrent changes of one tenant's limits"))
            }
        }
    }

    /// Reserves one call (no trip to the store when the tenant has no limits).
    pub async fn reserve(&self, tenant: &str, limits: &TenantLimits, req: &ReserveRequest, now_ms: u64) -> Result<Option<(Reservation, ReserveOutcome)>, GatewayError> {
        if limits.is_empty() {
            return Ok(None);
        }
        let outcome = self.update(tenant, |s| s.reserve(limits, req, now_ms)).await?;
        let id = match &outcome {
            ReserveOutcome::Admitted { reservation, .. } => *reservation,
            ReserveOutcome::Denied { .. } => 0,
        };
        Ok(Some((Reservation { tenant: tenant.to_string(), id, limits: limits.clone() }, outcome)))
    }

    /// Replaces the reservation with real usage (zero for a failed call).
    pub async fn settle(&self, r: &Reservation, tokens: u64, cost_usd: f64) {
        if let Err(e) = self.update(&r.tenant, |s| s.settle(&r.limits, r.id, tokens, cost_usd)).await {
            tracing::error!(error = %e, reservation = r.id, "settling a reservation failed");
        }
    }
}
