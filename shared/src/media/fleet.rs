//! [`MediaFleet`]: the media deployments as the driver sees them — their breakers and
//! names — shared by the workers of one process, so a provider that keeps failing is
//! skipped by every job until it heals.

use crate::breaker::{order_candidates, Board, BreakerConfig, Candidate};
use crate::config::MediaConfig;
use crate::drive::Fleet;
use crate::failover::Plan;

pub struct MediaFleet {
    board: Board,
    names: Vec<String>,
    providers: Vec<&'static str>,
}

impl MediaFleet {
    /// A probe is presumed lost only after the longest a media attempt may take.
    pub fn new(cfg: &MediaConfig, breaker: BreakerConfig) -> Self {
        let breaker = BreakerConfig { probe_timeout_ms: breaker.probe_timeout_ms.max(cfg.queue.provider_timeout_ms), ..breaker };
        MediaFleet { board: Board::new(cfg.deployments.len(), breaker), names: cfg.deployments.iter().map(|d| d.name.clone()).collect(), providers: cfg.deployments.iter().map(|d| d.provider.as_str()).collect() }
    }

    /// The model's deployments in their configured order, open breakers last.
    pub fn plan(&self, cfg: &MediaConfig, model: &str, now_ms: u64) -> Plan {
        let cands: Vec<Candidate> = cfg
            .model(model)
            .into_iter()
            .flat_map(|m| m.deployments.iter())
            .filter_map(|name| self.names.iter().position(|n| n == name))
            .map(|d| Candidate { deployment: d, weight: 1, latency_ewma_ms: None, available: self.board.available(d, now_ms) })
            .collect();
        Plan { deployments: order_candidates(&cands, false, 0.0, 0.0), ..Default::default() }
    }
}

impl Fleet for MediaFleet {
    fn board(&self) -> &Board {
        &self.board
    }

    fn name(&self, d: usize) -> &str {
        &self.names[d]
    }

    fn provider(&self, d: usize) -> &str {
        self.providers[d]
    }
}
