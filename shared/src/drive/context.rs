//! What a driver needs from the host's configuration, the cost rule, and the one place a
//! transport failure becomes a classified error.

use crate::api::Usage;
use crate::config::{Config, RouteConfig};
use crate::failover::{ErrorClass, TimeoutKind, UpstreamError};
use crate::pricing::PriceTable;
use crate::routing::{Deployment, ModelRoute, Router};

#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub router: &'a Router,
    pub prices: &'a PriceTable,
    /// The model's route: timeouts and retry policy.
    pub route: RouteConfig,
    pub default_max_tokens: u32,
}

impl<'a> Context<'a> {
    pub fn new(config: &Config, router: &'a Router, prices: &'a PriceTable, model: &ModelRoute) -> Self {
        Context { router, prices, route: config.routes.get(&model.route).copied().unwrap_or_default(), default_max_tokens: config.limits.default_max_tokens }
    }

    pub fn deployment(&self, d: usize) -> &'a Deployment {
        &self.router.deployments[d]
    }
}

/// What an answer cost: the deployment's configured price, else the built-in table's
/// price for the model that answered (as the provider named it).
pub fn cost(d: &Deployment, prices: &PriceTable, model: &str, u: &Usage) -> Option<f64> {
    d.price.or_else(|| prices.lookup(model)).map(|p| p.cost(u))
}

/// What a call of `tokens` tokens is estimated to cost before it is made: at the price of
/// the model's first deployment (the reservation a budget holds until the call settles).
pub fn estimated_cost(router: &Router, prices: &PriceTable, model: &ModelRoute, tokens: u64) -> f64 {
    model.deployments.first().and_then(|&d| cost(&router.deployments[d], prices, &router.deployments[d].model, &Usage::new(tokens, 0))).unwrap_or(0.0)
}

/// A transport failure before any response: refused or reset connections are transient;
/// a connect timeout is its own class.
pub fn transport_error(message: impl Into<String>, connect_timeout: bool) -> UpstreamError {
    let class = if connect_timeout { ErrorClass::Timeout(TimeoutKind::Connect) } else { ErrorClass::Transient };
    UpstreamError::new(class, None, message)
}

/// The timeout error of an attempt that waited `ms`, in phase `kind`, or `Total` when the
/// request's budget was what ran out.
pub(crate) fn timeout(kind: TimeoutKind, limited_by_total: bool, ms: u64) -> UpstreamError {
    let kind = if limited_by_total { TimeoutKind::Total } else { kind };
    UpstreamError::new(ErrorClass::Timeout(kind), None, format!("no {} within {ms} ms", kind.as_str().replace('_', " ")))
}
