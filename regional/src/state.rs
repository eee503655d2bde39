//! Process-wide state of a regional gateway: the validated config, the resolved
//! deployments, HTTP clients per route, and the API-key index.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_shared::auth::{ApiKeyDigest, Principal};
use meridian_shared::config::{Config, RouteConfig};
use meridian_shared::pricing::PriceTable;

use crate::limiter::{InMemoryLimiter, RateLimiter};
use meridian_shared::routing::Router;

pub struct AppState {
    pub config: Config,
    pub router: Router,
    pub prices: PriceTable,
    /// One HTTP client per route, since connect timeouts are per route.
    clients: HashMap<String, reqwest::Client>,
    keys: HashMap<ApiKeyDigest, Principal>,
    pub limiter: Box<dyn RateLimiter>,
    /// Tenant limits and budgets (`tenants[].limits`): in Redis, shared by the region's
    /// replicas, when the data plane has Redis; else process-local.
    pub tenant_limits: crate::tenant_limits::TenantLimiter,
    /// The secret the edge presents on forwarded requests and usage events.
    pub internal_secret: Option<String>,
    pub usage: std::sync::Arc<crate::usage::UsageStore>,
    /// RAG and documents; `None` in a region configured without `data_plane:`.
    pub data: Option<Arc<crate::data_plane::DataPlane>>,
    /// Media job queues and event hub; `None` without `media:`.
    pub media: Option<Arc<crate::media_plane::MediaPlane>>,
    /// Runtime-issued keys this process resolved (found or not), for `control.key_cache_ms`.
    pub resolver: crate::control::resolve::Resolver,
    /// The secret for HS* JWTs (`jwt.hmac_secret_env`), and the issuer's key set.
    pub jwt_hmac: Option<Vec<u8>>,
    pub jwks: crate::gateway::jwks::Jwks,
    /// The admin GraphQL schema (`/v1/graphql`).
    pub graphql: crate::control::graphql::AdminSchema,
    started: Instant,
}

pub type SharedState = Arc<AppState>;

fn client(route: &RouteConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(route.timeouts.connect_ms))
        .pool_max_idle_per_host(512)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client builds")
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, String> {
        let router = Router::from_config(&config, |var| std::env::var(var).ok())?;
        let mut clients = HashMap::new();
        clients.insert("default".to_string(), client(&config.routes.get("default").copied().unwrap_or_default()));
        for (name, r) in &config.routes {
            clients.insert(name.clone(), client(r));
        }
        let keys = config.api_key_index();
        let limiter = Box::new(InMemoryLimiter::new(config.limits.requests_per_minute, 60_000));
        let internal_secret = match &config.server.internal_secret_env {
            Some(var) => Some(std::env::var(var).map_err(|_| format!("server.internal_secret_env: environment variable {var} is not set"))?),
            None => None,
        };
        let resolver = crate::control::resolve::Resolver::new(config.control.key_cache_ms, config.control.max_cached_keys);
        let jwt_hmac = match config.jwt.as_ref().and_then(|j| j.hmac_secret_env.as_ref()) {
            Some(var) => Some(std::env::var(var).map_err(|_| format!("jwt.hmac_secret_env: environment variable {var} is not set"))?.into_bytes()),
            None => None,
        };
        Ok(AppState { router, prices: PriceTable::default(), clients, keys, limiter, tenant_limits: crate::tenant_limits::TenantLimiter::local(), internal_secret, usage: Default::default(), data: None, media: None, resolver, jwt_hmac, jwks: Default::default(), graphql: crate::control::graphql::schema(config.control.graphql_introspection), started: Instant::now(), config })
    }

    /// Monotonic milliseconds since start: the clock handed to the sans-I/O core.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn client(&self, route: &str) -> &reqwest::Client {
        self.clients.get(route).unwrap_or_else(|| &self.clients["default"])
    }

    pub fn route(&self, name: &str) -> RouteConfig {
        self.config.routes.get(name).copied().unwrap_or_default()
    }

    pub fn principal(&self, digest: &ApiKeyDigest) -> Option<&Principal> {
        self.keys.get(digest)
    }

    /// The principal the edge vouches for on a forwarded request.
    pub fn forwarded_principal(&self, tenant: &str, user: &str, roles: Option<Vec<String>>) -> Option<Principal> {
        Some(self.config.tenant(tenant)?.principal(user, roles))
    }

    /// Constant-time check of the edge's secret.
    pub fn is_internal(&self, presented: &str) -> bool {
        meridian_shared::auth::internal::secret_matches(self.internal_secret.as_deref(), presented)
    }

    /// This backend's region, as usage events and metrics name it (`eu`, `us`).
    pub fn region(&self) -> &'static str {
        self.config.server.region.as_str()
    }

    pub fn tenant_in_region_only(&self, tenant: &str) -> bool {
        self.config.tenants.iter().any(|t| t.id == tenant && t.providers_in_region_only)
    }
}
