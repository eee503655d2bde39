//! The usage event: what one answered request cost, attributed to tenant, user, feature
//! and the deployment that answered. Both hosts emit it; the tenant's home region keeps it.

use serde::{Deserialize, Serialize};

use crate::api::Usage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    pub tenant: String,
    /// API key name or JWT subject.
    pub user: String,
    /// From the `x-meridian-feature` request header, for per-feature cost reports.
    #[serde(default)]
    pub feature: Option<String>,
    pub deployment: String,
    pub provider: String,
    /// The model that answered, as the provider named it.
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: Option<f64>,
    pub latency_ms: f64,
    pub stream: bool,
    /// `exact` or `semantic` when served from a response cache (no provider was called).
    #[serde(default)]
    pub cache: Option<String>,
    /// For a cache hit: what the provider call would have cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_usd: Option<f64>,
    /// Which host handled the request: `edge` or a region.
    pub via: String,
    /// The semantic-cache lookup made for this request, if any (hit or miss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<crate::cache::semantic::Lookup>,
    /// Every upstream attempt the request made, as the driver logged them. The home region
    /// records the edge's as metrics, through the same function as its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<crate::drive::AttemptEvent>,
    /// `prefill` or `instruction` when the answer includes a continuation after a break.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued: Option<crate::drive::Continuation>,
    /// The client received part of the answer, then an in-band error (tokens are what
    /// was delivered, by the provider's count or else one per chunk).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

impl UsageEvent {
    /// An event for `p`'s request handled `via` a host, before anything answered.
    pub fn for_principal(p: &crate::auth::Principal, via: &str, feature: Option<String>) -> UsageEvent {
        UsageEvent::for_user(&p.tenant, &p.key_name, via, feature)
    }

    /// An event for `user` of `tenant` (a job run later, without the caller's principal).
    pub fn for_user(tenant: &str, user: &str, via: &str, feature: Option<String>) -> UsageEvent {
        UsageEvent {
            tenant: tenant.to_string(),
            user: user.to_string(),
            feature,
            deployment: String::new(),
            provider: String::new(),
            model: String::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            reasoning_tokens: 0,
            cost_usd: None,
            latency_ms: 0.0,
            stream: false,
            cache: None,
            saved_usd: None,
            via: via.to_string(),
            semantic: None,
            attempts: Vec::new(),
            continued: None,
            interrupted: false,
        }
    }

    /// Who answered: deployment, provider and the model name the provider gave.
    pub fn answered_by(&mut self, deployment: &str, provider: &str, model: &str) -> &mut Self {
        self.deployment = deployment.to_string();
        self.provider = provider.to_string();
        self.model = model.to_string();
        self
    }

    /// The answer the stream driver finished (or the part of it an interrupted stream
    /// delivered): who answered, tokens, cost, continuation.
    pub fn finished(&mut self, deployment: &str, provider: &str, f: &crate::drive::Finished) -> &mut Self {
        self.answered_by(deployment, provider, &f.model).tokens(&f.usage);
        self.cost_usd = f.cost_usd;
        self.continued = f.continued;
        self.interrupted = f.interrupted;
        self.stream = true;
        self
    }

    pub fn tokens(&mut self, u: &Usage) -> &mut Self {
        self.prompt_tokens = u.prompt_tokens;
        self.completion_tokens = u.completion_tokens;
        self.cached_tokens = u.cached_tokens();
        self.reasoning_tokens = u.reasoning_tokens();
        self
    }
}
