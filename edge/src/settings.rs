//! The edge's configuration: the same YAML as the regional backend (text binding
//! `MERIDIAN_CONFIG`), parsed and validated once per isolate; secrets come from Worker
//! secrets named by the config.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use meridian_shared::api::GatewayError;
use meridian_shared::auth::{ApiKeyDigest, Principal};
use meridian_shared::config::{Config, EdgeConfig};
use meridian_shared::pricing::PriceTable;
use meridian_shared::routing::Router;
use worker::Env;

pub struct Settings {
    pub config: Config,
    pub edge: EdgeConfig,
    pub router: Router,
    pub prices: PriceTable,
    keys: HashMap<ApiKeyDigest, Principal>,
    pub internal_secret: Option<String>,
    pub hmac_secret: Option<Vec<u8>>,
}

thread_local! {
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

/// A secret or plain-text binding by name.
pub fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
}

fn build(env: &Env) -> Result<Settings, String> {
    let text = secret(env, "MERIDIAN_CONFIG").ok_or("the MERIDIAN_CONFIG binding is missing")?;
    let config = Config::from_yaml(&text).map_err(|e| e.to_string())?;
    let edge = config.edge.clone().ok_or("config has no `edge` section")?;
    let router = Router::from_config(&config, |name| secret(env, name))?;
    let keys = config.api_key_index();
    let internal_secret = match &config.server.internal_secret_env {
        Some(n) => Some(secret(env, n).ok_or_else(|| format!("secret {n} (server.internal_secret_env) is not set"))?),
        None => None,
    };
    let hmac_secret = match config.jwt.as_ref().and_then(|j| j.hmac_secret_env.as_ref()) {
        Some(n) => Some(secret(env, n).ok_or_else(|| format!("secret {n} (jwt.hmac_secret_env) is not set"))?.into_bytes()),
        None => None,
    };
    Ok(Settings { config, edge, router, prices: PriceTable::default(), keys, internal_secret, hmac_secret })
}

/// The isolate's settings, built on first use.
pub fn load(env: &Env) -> Result<Rc<Settings>, GatewayError> {
    if let Some(s) = SETTINGS.with(|c| c.borrow().clone()) {
        return Ok(s);
    }
    let s = Rc::new(build(env).map_err(|e| GatewayError::Internal(format!("edge misconfigured: {e}")))?);
    SETTINGS.with(|c| *c.borrow_mut() = Some(s.clone()));
    Ok(s)
}

impl Settings {
    pub fn principal_for_key(&self, d: &ApiKeyDigest) -> Option<&Principal> {
        self.keys.get(d)
    }

    pub fn tenant(&self, id: &str) -> Option<&meridian_shared::config::TenantConfig> {
        self.config.tenant(id)
    }
}
