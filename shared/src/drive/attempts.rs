//! [`Attempts`]: the loop every upstream call shares — the plan, the failover engine,
//! breaker acquire and record, backoff waits, and the attempt log — for any kind of call.
//! [`super::Complete`], [`super::Stream`] and the media executor wrap it with what their
//! call sends and reads.

use super::log::AttemptEvent;
use super::rng::Rng;
use super::Fleet;
use crate::breaker::BreakerState;
use crate::failover::{Action, AttemptMode, Engine, ErrorClass, Outcome, Plan, RetryPolicy, UpstreamError};

/// The attempt the host is to make now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub deployment: usize,
    /// 1-based, across all deployments.
    pub attempt: u32,
    pub mode: AttemptMode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Sleep this long, then ask again.
    Wait(u64),
    Go(Turn),
    Done,
    GiveUp(UpstreamError),
}

struct InFlight {
    turn: Turn,
    sent_ms: u64,
    waited_ms: u64,
    /// Health already recorded (a stream's first output).
    healthy: bool,
}

pub struct Attempts<'a> {
    fleet: &'a dyn Fleet,
    engine: Engine,
    action: Action,
    /// The pending attempt's wait was handed out.
    waited: bool,
    in_flight: Option<InFlight>,
    rng: Rng,
    events: Vec<AttemptEvent>,
    last: Option<Turn>,
}

impl<'a> Attempts<'a> {
    pub fn new(fleet: &'a dyn Fleet, plan: Plan, policy: RetryPolicy, now_ms: u64, seed: u64) -> Self {
        let mut engine = Engine::new(plan, policy, now_ms);
        let action = engine.start();
        Attempts { fleet, engine, action, waited: false, in_flight: None, rng: Rng::new(seed), events: Vec::new(), last: None }
    }

    /// The next thing to do. Between a [`Next::Go`] and its report, call nothing else.
    pub fn next(&mut self, now_ms: u64) -> Next {
        debug_assert!(self.in_flight.is_none(), "next() before the attempt in flight was reported");
        loop {
            match self.action.clone() {
                Action::Attempt { deployment, after_ms, mode, attempt } => {
                    if after_ms > 0 && !self.waited {
                        self.waited = true;
                        return Next::Wait(after_ms);
                    }
                    let waited_ms = if self.waited { after_ms } else { 0 };
                    self.waited = false;
                    let turn = Turn { deployment, attempt, mode };
                    if !self.fleet.board().acquire(deployment, now_ms) {
                        let e = UpstreamError::new(ErrorClass::BreakerOpen, None, format!("circuit breaker for {} is open", self.fleet.name(deployment)));
                        self.log(turn, waited_ms, 0, "breaker_open", None);
                        self.action = self.engine.on_outcome(Outcome::Failed(e), now_ms, self.rng.unit());
                        continue;
                    }
                    self.in_flight = Some(InFlight { turn, sent_ms: now_ms, waited_ms, healthy: false });
                    self.last = Some(turn);
                    return Next::Go(turn);
                }
                Action::Done => return Next::Done,
                Action::GiveUp(e) => return Next::GiveUp(e),
            }
        }
    }

    fn log(&mut self, turn: Turn, waited_ms: u64, latency_ms: u64, outcome: &str, status: Option<u16>) {
        let breaker = self.fleet.board().state(turn.deployment);
        self.events.push(AttemptEvent {
            attempt: turn.attempt,
            deployment: self.fleet.name(turn.deployment).to_string(),
            provider: self.fleet.provider(turn.deployment).to_string(),
            mode: turn.mode.as_str().to_string(),
            waited_ms,
            latency_ms,
            outcome: outcome.to_string(),
            status,
            breaker: breaker.as_str().to_string(),
        });
    }

    /// The attempt in flight shows the deployment works (a stream's first output, or a
    /// whole answer): its breaker closes and its latency is recorded.
    pub fn healthy(&mut self, now_ms: u64) -> Option<BreakerState> {
        let f = self.in_flight.as_mut()?;
        if f.healthy {
            return None;
        }
        f.healthy = true;
        Some(self.fleet.board().success(f.turn.deployment, now_ms.saturating_sub(f.sent_ms) as f64))
    }

    /// The attempt in flight produced the whole answer.
    pub fn succeeded(&mut self, now_ms: u64) {
        self.healthy(now_ms);
        if let Some(f) = self.in_flight.take() {
            self.log(f.turn, f.waited_ms, now_ms.saturating_sub(f.sent_ms), "ok", None);
        }
        self.action = self.engine.on_outcome(Outcome::Success, now_ms, 0.0);
    }

    /// The attempt in flight failed; the engine decides what comes next.
    pub fn failed(&mut self, e: UpstreamError, now_ms: u64) {
        if let Some(f) = self.in_flight.take() {
            self.fleet.board().failure(f.turn.deployment, e.class, now_ms);
            self.log(f.turn, f.waited_ms, now_ms.saturating_sub(f.sent_ms), e.class.as_str(), e.status);
        }
        self.action = self.engine.on_outcome(Outcome::Failed(e), now_ms, self.rng.unit());
    }

    /// Ends the request with `e` whatever the engine would do (a rule of the call, such as
    /// "tool output cannot be continued"). `outcome` names the attempt's end in the log.
    pub fn stop(&mut self, e: UpstreamError, outcome: &str, now_ms: u64) {
        if let Some(f) = self.in_flight.take() {
            if e.class.counts_against_deployment() && outcome != "seam_rejected" {
                self.fleet.board().failure(f.turn.deployment, e.class, now_ms);
            } else if !f.healthy {
                self.fleet.board().release(f.turn.deployment, now_ms);
            }
            self.log(f.turn, f.waited_ms, now_ms.saturating_sub(f.sent_ms), outcome, e.status);
        }
        self.action = Action::GiveUp(e);
    }

    /// The client went away: the attempt in flight says nothing about the deployment.
    pub fn abandon(&mut self, now_ms: u64) {
        if let Some(f) = self.in_flight.take() {
            if !f.healthy {
                self.fleet.board().release(f.turn.deployment, now_ms);
            }
            self.log(f.turn, f.waited_ms, now_ms.saturating_sub(f.sent_ms), "abandoned", None);
        }
        self.action = Action::GiveUp(UpstreamError::new(ErrorClass::Transient, None, "the client went away"));
    }

    /// The attempt in flight, if any.
    pub fn current(&self) -> Option<Turn> {
        self.in_flight.as_ref().map(|f| f.turn)
    }

    /// The latest attempt made (in flight or ended).
    pub fn last(&self) -> Option<Turn> {
        self.last
    }

    pub fn attempts(&self) -> u32 {
        self.engine.attempts()
    }

    /// The attempt log since the last call.
    pub fn take_events(&mut self) -> Vec<AttemptEvent> {
        std::mem::take(&mut self.events)
    }
}

impl Drop for Attempts<'_> {
    /// A driver dropped with an attempt in flight (the host's future was cancelled: the
    /// client left, a job was cancelled) frees the probe it may hold, so the breaker does
    /// not wait out `probe_timeout_ms`.
    fn drop(&mut self) {
        if let Some(f) = self.in_flight.take() {
            if !f.healthy {
                self.fleet.board().release(f.turn.deployment, 0);
            }
        }
    }
}
