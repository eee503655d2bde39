//! Model aliases → deployments, and the plan for one request. Deployment health (circuit
//! breaker + latency EWMA) lives on the router's [`Board`], shared by all requests of one
//! host process or isolate. Secrets are resolved by the host (environment variables
//! natively, Worker secrets at the edge).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::auth::{roles_allow, Principal, Region, RoleConfig, RouteClass};
use crate::breaker::{order_candidates, Board, BreakerConfig, BreakerState, Candidate};
use crate::config::{Config, Strategy};
use crate::drive::Fleet;
use crate::failover::Plan;
use crate::pricing::Price;
use crate::providers::{prefill, ProviderKind, Target};

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
    /// The model continues a final, partial assistant turn (config, else the known-model table).
    pub prefill: bool,
}

impl Deployment {
    pub fn target(&self, default_max_tokens: u32) -> Target<'_> {
        Target { base_url: &self.base_url, api_key: self.api_key.as_deref(), model: &self.model, default_max_tokens }
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
    /// Shared, so a request can hold its resolved route past the lookup.
    pub models: HashMap<String, Arc<ModelRoute>>,
    /// Model names in config order, for `GET /v1/models`.
    pub model_names: Vec<String>,
    pub health: Board,
}

impl Fleet for Router {
    fn board(&self) -> &Board {
        &self.health
    }

    fn name(&self, d: usize) -> &str {
        &self.deployments[d].name
    }

    fn provider(&self, d: usize) -> &str {
        &self.deployments[d].provider_name
    }
}

impl Router {
    /// `secret` resolves a provider's `api_key_env` name to its value. A provider whose
    /// kind needs a key fails to load without it; a keyless kind (vLLM, Ollama, any
    /// OpenAI-compatible server) runs without one.
    pub fn from_config(c: &Config, secret: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let breaker: BreakerConfig = c.breaker.into();
        let mut deployments = Vec::new();
        let mut index = HashMap::new();
        for d in &c.deployments {
            let p = c.providers.iter().find(|p| p.name == d.provider).ok_or("validated provider")?;
            let api_key = match &p.api_key_env {
                Some(var) => match secret(var) {
                    Some(v) => Some(v),
                    None if !p.kind.needs_key() => None,
                    None => return Err(format!("provider {:?}: secret {var} is not set", p.name)),
                },
                None => None,
            };
            let base_url = p.base_url.clone().unwrap_or_else(|| p.kind.default_base_url().to_string());
            index.insert(d.name.clone(), deployments.len());
            deployments.push(Deployment {
                name: d.name.clone(),
                provider_name: p.name.clone(),
                kind: p.kind,
                prefill: d.prefill.unwrap_or_else(|| prefill::accepts_prefill(p.kind, &d.model, &base_url)),
                base_url,
                api_key,
                model: d.model.clone(),
                weight: d.weight,
                region: p.region,
                price: d.price,
            });
        }
        let mut models = HashMap::new();
        for m in &c.models {
            models.insert(
                m.name.clone(),
                Arc::new(ModelRoute {
                    deployments: m.deployments.iter().map(|d| index[d]).collect(),
                    context_fallbacks: m.context_fallbacks.iter().map(|d| index[d]).collect(),
                    strategy: m.strategy,
                    route: m.route.clone(),
                }),
            );
        }
        let health = Board::new(deployments.len(), breaker);
        Ok(Router { deployments, models, model_names: c.models.iter().map(|m| m.name.clone()).collect(), health })
    }

    /// Orders the model's deployments for one request. `region` restricts to providers
    /// tagged with that region; `r1`, `r2` are uniform randoms in `[0, 1)`.
    pub fn plan(&self, model: &ModelRoute, region: Option<Region>, now_ms: u64, r1: f64, r2: f64) -> Plan {
        let allowed = |i: &usize| region.is_none_or(|r| self.deployments[*i].region == Some(r));
        let cands: Vec<Candidate> = model
            .deployments
            .iter()
            .filter(|i| allowed(i))
            .map(|&i| Candidate { deployment: i, weight: self.deployments[i].weight, latency_ewma_ms: self.health.latency_ms(i), available: self.health.available(i, now_ms) })
            .collect();
        Plan {
            deployments: order_candidates(&cands, model.strategy == Strategy::Weighted, r1, r2),
            context_fallbacks: model.context_fallbacks.iter().copied().filter(|i| allowed(i)).collect(),
            continuable: Vec::new(),
        }
    }

    /// The model aliases `p` may call, in config order: its tenant's allow-list and its
    /// roles' model grants (`GET /v1/models` on both hosts).
    pub fn visible_models(&self, p: &Principal, roles: &BTreeMap<String, RoleConfig>) -> Vec<&str> {
        self.model_names.iter().filter(|m| p.may_use_model(m) && roles_allow(p.roles.as_deref(), roles, RouteClass::Models, Some(m))).map(String::as_str).collect()
    }

    pub fn breaker_state(&self, d: usize) -> BreakerState {
        self.health.state(d)
    }
}
