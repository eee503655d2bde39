//! Model aliases → deployments, and per-deployment health (circuit breaker + latency
//! EWMA) shared by all requests of one host process or isolate. Secrets are resolved by
//! the host (environment variables natively, Worker secrets at the edge).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::Region;
use crate::breaker::{order_candidates, BreakerConfig, BreakerState, Candidate, CircuitBreaker, Ewma};
use crate::config::{Config, Strategy};
use crate::failover::{ErrorClass, Plan};
use crate::pricing::Price;
use crate::providers::{ProviderKind, Target};

/// One callable deployment, with its secret resolved from the environment at load.
pub struct Deployment {
    pub name: String,
    pub provider_name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    api_key: Option<String>,
    pub model: String,
    pub weight: u32,
    pub region: Option<Region>,
    pub price: Option<Price>,
    health: Mutex<Health>,
}

struct Health {
    breaker: CircuitBreaker,
    latency: Ewma,
}

impl Deployment {
    pub fn target(&self, default_max_tokens: u32) -> Target<'_> {
        Target { base_url: &self.base_url, api_key: self.api_key.as_deref(), model: &self.model, default_max_tokens }
    }

    pub fn breaker_state(&self) -> crate::breaker::BreakerState {
        self.health.lock().unwrap().breaker.state
    }
}

pub struct ModelRoute {
    pub deployments: Vec<usize>,
    pub context_fallbacks: Vec<usize>,
    pub strategy: Strategy,
    pub route: String,
}

pub struct Router {
    pub deployments: Vec<Deployment>,
    pub models: HashMap<String, ModelRoute>,
    /// Model names in config order, for `GET /v1/models`.
    pub model_names: Vec<String>,
}

impl Router {
    /// `secret` resolves a provider's `api_key_env` name to its value.
    pub fn from_config(c: &Config, secret: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let breaker: BreakerConfig = c.breaker.into();
        let mut deployments = Vec::new();
        let mut index = HashMap::new();
        for d in &c.deployments {
            let p = c.providers.iter().find(|p| p.name == d.provider).ok_or("validated provider")?;
            let api_key = match &p.api_key_env {
                Some(var) => Some(secret(var).ok_or_else(|| format!("provider {:?}: secret {var} is not set", p.name))?),
                None => None,
            };
            index.insert(d.name.clone(), deployments.len());
            deployments.push(Deployment {
                name: d.name.clone(),
                provider_name: p.name.clone(),
                kind: p.kind,
                base_url: p.base_url.clone().unwrap_or_else(|| p.kind.default_base_url().to_string()),
                api_key,
                model: d.model.clone(),
                weight: d.weight,
                region: p.region,
                price: d.price,
                health: Mutex::new(Health { breaker: CircuitBreaker::new(breaker), latency: Ewma::new(0.2) }),
            });
        }
        let mut models = HashMap::new();
        for m in &c.models {
            models.insert(
                m.name.clone(),
                ModelRoute {
                    deployments: m.deployments.iter().map(|d| index[d]).collect(),
                    context_fallbacks: m.context_fallbacks.iter().map(|d| index[d]).collect(),
                    strategy: m.strategy,
                    route: m.route.clone(),
                },
            );
        }
        Ok(Router { deployments, models, model_names: c.models.iter().map(|m| m.name.clone()).collect() })
    }

    /// Orders the model's deployments for one request. `region` restricts to providers
    /// tagged with that region; `r1`, `r2` are uniform randoms in `[0, 1)` from the host.
    pub fn plan(&self, model: &ModelRoute, region: Option<Region>, now_ms: u64, r1: f64, r2: f64) -> Plan {
        let allowed = |i: &usize| region.is_none_or(|r| self.deployments[*i].region == Some(r));
        let cands: Vec<Candidate> = model
            .deployments
            .iter()
            .filter(|i| allowed(i))
            .map(|&i| {
                let h = self.deployments[i].health.lock().unwrap();
                Candidate { deployment: i, weight: self.deployments[i].weight, latency_ewma_ms: h.latency.value(), available: h.breaker.is_available(now_ms) }
            })
            .collect();
        Plan {
            deployments: order_candidates(&cands, model.strategy == Strategy::Weighted, r1, r2),
            context_fallbacks: model.context_fallbacks.iter().copied().filter(|i| allowed(i)).collect(),
        }
    }

    /// Called before an attempt: claims a half-open probe slot when the breaker is open.
    pub fn acquire(&self, deployment: usize, now_ms: u64) -> bool {
        self.deployments[deployment].health.lock().unwrap().breaker.try_acquire(now_ms)
    }

    /// Records a success; returns the breaker state after it.
    pub fn record_success(&self, deployment: usize, latency_ms: f64) -> BreakerState {
        let mut h = self.deployments[deployment].health.lock().unwrap();
        h.breaker.on_success();
        h.latency.observe(latency_ms);
        h.breaker.state
    }

    /// Records a failure (if it says anything about the deployment); returns the breaker state.
    pub fn record_failure(&self, deployment: usize, class: ErrorClass, now_ms: u64) -> BreakerState {
        let mut h = self.deployments[deployment].health.lock().unwrap();
        if class.counts_against_deployment() {
            h.breaker.on_failure(now_ms);
        }
        h.breaker.state
    }
}
