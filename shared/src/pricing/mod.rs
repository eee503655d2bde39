//! The price table and cost computation. Prices are data (`prices.yaml`), compiled in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
}

impl Price {
    /// Cost in USD. Cached prompt tokens are billed at the cached rate when one is known.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_tokens().min(usage.prompt_tokens);
        let fresh = usage.prompt_tokens - cached;
        let cached_rate = self.cached_input.unwrap_or(self.input);
        (fresh as f64 * self.input + cached as f64 * cached_rate + usage.completion_tokens as f64 * self.output) / 1_000_000.0
    }
}

#[derive(Debug, Clone)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

const BUILTIN: &str = include_str!("prices.yaml");

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable { prices: serde_yaml::from_str(BUILTIN).expect("built-in price table is valid") }
    }
}

impl PriceTable {
    /// Exact name first, then the longest configured prefix.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.prices.get(model) {
            return Some(*p);
        }
        self.prices.iter().filter(|(k, _)| model.starts_with(k.as_str())).max_by_key(|(k, _)| k.len()).map(|(_, p)| *p)
    }

    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.lookup(model).map(|p| p.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_cached_pricing() {
        let t = PriceTable::default();
        assert_eq!(t.lookup("gpt-4o-2024-08-06"), t.lookup("gpt-4o"));
        assert_eq!(t.lookup("gpt-4o-mini-2024").unwrap().input, 0.15, "longest prefix wins");
        let u = Usage::new(1_000_000, 1_000_000).with_cached(500_000);
        let c = t.cost("gpt-4o", &u).unwrap();
        assert!((c - (0.5 * 2.5 + 0.5 * 1.25 + 10.0)).abs() < 1e-9);
        assert_eq!(t.cost("unknown-model", &u), None);
    }
}
