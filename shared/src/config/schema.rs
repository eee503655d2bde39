//! The config schema. Defaults are the values a fresh deployment should run with.

use serde::{Deserialize, Serialize};

use crate::auth::Region;
use crate::breaker::BreakerConfig;
use crate::failover::{OnTransient, RetryPolicy};
use crate::pricing::Price;
use crate::providers::ProviderKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub limits: Limits,
    pub providers: Vec<ProviderConfig>,
    pub deployments: Vec<DeploymentConfig>,
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub routes: std::collections::BTreeMap<String, RouteConfig>,
    #[serde(default)]
    pub breaker: BreakerSettings,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Role name → what it allows (JWT `roles` claim or `api_keys[].roles`).
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, crate::auth::RoleConfig>,
    #[serde(default)]
    pub jwt: Option<crate::auth::jwt::JwtConfig>,
    /// Settings only the edge Worker reads.
    #[serde(default)]
    pub edge: Option<EdgeConfig>,
    /// Settings only the regional data plane reads (RAG, documents, chatbots).
    #[serde(default)]
    pub data_plane: Option<super::DataPlaneConfig>,
    #[serde(default)]
    pub semantic_cache: super::SemanticCacheSettings,
    /// Media generation (images, speech, transcription, video) as queued jobs.
    #[serde(default)]
    pub media: Option<super::MediaConfig>,
    /// Runtime objects of the control plane (keys issued through the admin API).
    #[serde(default)]
    pub control: super::ControlSettings,
}

/// The edge Worker's own settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Regional backend base URLs by region: the only places tenant data goes.
    pub regions: std::collections::BTreeMap<Region, String>,
    /// Exact response cache.
    #[serde(default)]
    pub cache: CacheSettings,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    pub enabled: bool,
    pub ttl_secs: u64,
    /// Cache answers to requests that offer tools (a tool call may have side effects).
    pub cache_tool_requests: bool,
    /// Largest answer stored, in bytes.
    pub max_entry_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings { enabled: true, ttl_secs: 3600, cache_tool_requests: false, max_entry_bytes: 256 * 1024 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: String,
    /// The region this backend serves; tenants homed elsewhere are refused.
    pub region: Region,
    /// How long shutdown waits for in-flight streams to finish.
    pub drain_timeout_ms: u64,
    /// Env var holding the secret the edge presents when it forwards a request or a
    /// usage event (`x-meridian-internal`). Unset: no forwarded identities accepted.
    pub internal_secret_env: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: "127.0.0.1:8080".into(), region: Region::Eu, drain_timeout_ms: 30_000, internal_secret_env: None }
    }
}

/// What to do with request fields the gateway does not model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFieldPolicy {
    /// 400 naming the field.
    Reject,
    /// Silently removed before the provider call.
    Drop,
    /// Sent to OpenAI-compatible providers as they are (LiteLLM's behaviour).
    Passthrough,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_messages: usize,
    /// Upper bound for `max_tokens` / `max_completion_tokens`.
    pub max_output_tokens: u32,
    /// Output cap sent to providers that require one when the client gave none.
    pub default_max_tokens: u32,
    pub unknown_fields: UnknownFieldPolicy,
    /// Requests per minute per API key (in-memory limiter in this host).
    pub requests_per_minute: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body_bytes: 4 * 1024 * 1024, max_messages: 512, max_output_tokens: 128_000, default_max_tokens: 4096, unknown_fields: UnknownFieldPolicy::Passthrough, requests_per_minute: 6_000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Defaults to the provider's public endpoint.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Name of the environment variable holding the key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Where the provider processes data; tenants restricted to their region only use matching providers.
    #[serde(default)]
    pub region: Option<Region>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    pub name: String,
    pub provider: String,
    /// The provider's model name.
    pub model: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub price: Option<Price>,
    /// Whether this model continues a final, partial assistant turn ("prefill"), the
    /// only verifiable way to continue a stream that broke after output reached the
    /// client. Unset: the built-in table of known model families
    /// (`meridian_shared::providers::prefill`); unknown models are not capable.
    #[serde(default)]
    pub prefill: Option<bool>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Try deployments in the listed order.
    #[default]
    Ordered,
    /// Spread by weight, preferring lower latency (power of two choices on EWMA).
    Weighted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients send as `model`.
    pub name: String,
    pub deployments: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
    /// Larger-context deployments for prompts that do not fit.
    #[serde(default)]
    pub context_fallbacks: Vec<String>,
    /// Which entry of `routes` sets this model's timeouts and retries.
    #[serde(default = "default_route")]
    pub route: String,
}

fn default_route() -> String {
    "default".into()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub connect_ms: u64,
    /// A stream: until response headers.
    pub first_byte_ms: u64,
    /// A stream: from its headers until the first token.
    pub first_token_ms: u64,
    /// A stream: the longest gap between two chunks.
    pub idle_ms: u64,
    /// A non-streamed answer, one attempt: from sending until its last byte (providers
    /// send the headers of a non-streamed answer once it is generated).
    pub response_ms: u64,
    /// The whole request, every attempt included.
    pub total_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect_ms: 2_000, first_byte_ms: 30_000, first_token_ms: 30_000, idle_ms: 30_000, response_ms: 120_000, total_ms: 300_000 }
    }
}

/// What a stream that broke after output reached the client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContinueMode {
    /// End with an in-band error and no terminator.
    Off,
    /// Continue only on a deployment whose model accepts an assistant prefill, behind
    /// the seam check; otherwise end as `off`.
    #[default]
    Prefill,
    /// Also continue elsewhere with an instruction turn ("continue where you stopped").
    /// Unverifiable: models often start over. Still behind the seam check, and marked
    /// `x-meridian-continued=instruction`.
    Instruction,
}

impl<'de> Deserialize<'de> for ContinueMode {
    /// `off`, `prefill`, `instruction`; `true` and `false` (the older boolean) mean
    /// `prefill` and `off`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(true) => Ok(ContinueMode::Prefill),
            Raw::Flag(false) => Ok(ContinueMode::Off),
            Raw::Name(n) => match n.as_str() {
                "off" => Ok(ContinueMode::Off),
                "prefill" => Ok(ContinueMode::Prefill),
                "instruction" => Ok(ContinueMode::Instruction),
                other => Err(serde::de::Error::custom(format!("unknown continuation mode {other:?}: use off, prefill or instruction"))),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    pub max_attempts: u32,
    pub max_attempts_per_deployment: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub max_retry_after_ms: u64,
    pub continue_broken_streams: ContinueMode,
    pub on_transient: OnTransient,
    pub retry_after_wait_max_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        let p = RetryPolicy::default();
        RetrySettings {
            max_attempts: p.max_attempts,
            max_attempts_per_deployment: p.max_attempts_per_deployment,
            backoff_base_ms: p.backoff_base_ms,
            backoff_max_ms: p.backoff_max_ms,
            max_retry_after_ms: p.max_retry_after_ms,
            continue_broken_streams: ContinueMode::default(),
            on_transient: p.on_transient,
            retry_after_wait_max_ms: p.retry_after_wait_max_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    pub timeouts: Timeouts,
    pub retry: RetrySettings,
}

impl RouteConfig {
    pub fn policy(&self) -> RetryPolicy {
        let r = self.retry;
        RetryPolicy {
            max_attempts: r.max_attempts,
            max_attempts_per_deployment: r.max_attempts_per_deployment,
            backoff_base_ms: r.backoff_base_ms,
            backoff_max_ms: r.backoff_max_ms,
            max_retry_after_ms: r.max_retry_after_ms,
            total_budget_ms: self.timeouts.total_ms,
            on_transient: r.on_transient,
            retry_after_wait_max_ms: r.retry_after_wait_max_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    pub failure_threshold: u32,
    pub cooldown_ms: u64,
    pub max_cooldown_ms: u64,
    pub probe_timeout_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        let b = BreakerConfig::default();
        BreakerSettings { failure_threshold: b.failure_threshold, cooldown_ms: b.cooldown_ms, max_cooldown_ms: b.max_cooldown_ms, probe_timeout_ms: b.probe_timeout_ms }
    }
}

impl From<BreakerSettings> for BreakerConfig {
    fn from(b: BreakerSettings) -> Self {
        BreakerConfig { failure_threshold: b.failure_threshold, cooldown_ms: b.cooldown_ms, max_cooldown_ms: b.max_cooldown_ms, probe_timeout_ms: b.probe_timeout_ms }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    pub region: Region,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// Model aliases the tenant may call; `*` for all.
    #[serde(default = "all_models")]
    pub allowed_models: Vec<String>,
    /// Only call providers tagged with the tenant's region.
    #[serde(default)]
    pub providers_in_region_only: bool,
    /// Rate limits and budget (enforced at the edge in a Durable Object per tenant).
    #[serde(default)]
    pub limits: crate::ratelimit::TenantLimits,
    /// Languages the tenant's users write in (ISO 639-1); they pick the embedding model.
    #[serde(default = "english")]
    pub languages: Vec<String>,
    /// Overrides the model the languages pick.
    #[serde(default)]
    pub embedding_model: Option<super::data_plane::EmbeddingModel>,
    /// This tenant's semantic-cache threshold, instead of `semantic_cache.threshold`.
    #[serde(default)]
    pub semantic_cache_threshold: Option<f32>,
    /// Where finished media jobs are announced (signed; see docs/CONFIG.md).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
}

fn english() -> Vec<String> {
    vec!["en".into()]
}

impl TenantConfig {
    /// The local embedding model for this tenant's new knowledge bases and its cache.
    pub fn embedding_model(&self) -> super::data_plane::EmbeddingModel {
        self.embedding_model.unwrap_or_else(|| super::data_plane::EmbeddingModel::for_languages(&self.languages))
    }
}

fn all_models() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub name: String,
    /// Hex SHA-256 of the key (`meridian-regional hash-key <key>` prints it).
    pub sha256: String,
    /// Roles of this key; none means limited only by the tenant.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

/// A tenant's webhook: events are POSTed to `url`, signed with the secret in `secret_env`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    pub secret_env: String,
    /// Tries per event.
    #[serde(default = "webhook_attempts")]
    pub attempts: u32,
}

fn webhook_attempts() -> u32 {
    5
}
