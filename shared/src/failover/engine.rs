//! The failover state machine.

use serde::{Deserialize, Serialize};

use super::backoff::backoff_ms;
use super::class::{ErrorClass, TimeoutKind, UpstreamError};

/// What a transient failure (5xx, reset, refused, 429) on a deployment leads to first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTransient {
    /// Fail over at once to an untried deployment; retry (with backoff) only when none
    /// is left. Lowest latency.
    #[default]
    Failover,
    /// Retry the same deployment first (after its backoff, or its `Retry-After` when
    /// that is at most `retry_after_wait_max_ms`), then fail over. Keeps traffic on the
    /// primary (cost, data agreements, prompt caching).
    RetryFirst,
}

/// Retry budgets for one route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total across all deployments, including the first.
    pub max_attempts: u32,
    /// Attempts on any one deployment.
    pub max_attempts_per_deployment: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// A `Retry-After` longer than this is not waited for on that deployment.
    pub max_retry_after_ms: u64,
    /// Wall-clock budget for the whole request, all attempts included.
    pub total_budget_ms: u64,
    pub on_transient: OnTransient,
    /// With [`OnTransient::RetryFirst`]: the longest `Retry-After` waited out on the
    /// same deployment before failing over.
    pub retry_after_wait_max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            max_attempts_per_deployment: 2,
            backoff_base_ms: 200,
            backoff_max_ms: 5_000,
            max_retry_after_ms: 10_000,
            total_budget_ms: 120_000,
            on_transient: OnTransient::Failover,
            retry_after_wait_max_ms: 2_000,
        }
    }
}

/// The deployments to try, already ordered by the host's balancing (healthy first).
/// Deployments are opaque indices into the host's table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub deployments: Vec<usize>,
    /// Larger-context deployments to use when the prompt does not fit.
    pub context_fallbacks: Vec<usize>,
    /// The deployments that may take a continuation after output reached the client
    /// (their model accepts an assistant prefill, or the route opted into the
    /// instruction form). Empty: a break after output is final.
    pub continuable: Vec<usize>,
}

/// How the host should shape the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptMode {
    /// Send the client's request as it is.
    Fresh,
    /// Continue an answer that broke after tokens reached the client: send the request
    /// plus the partial answer so the target carries on where the stream stopped.
    Continue,
}

impl AttemptMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptMode::Fresh => "fresh",
            AttemptMode::Continue => "continue",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Wait `after_ms`, then make attempt number `attempt` (1-based) on `deployment`.
    Attempt { deployment: usize, after_ms: u64, mode: AttemptMode, attempt: u32 },
    /// Stop: report this error to the client (in-band if the stream has started).
    GiveUp(UpstreamError),
    /// The last attempt succeeded.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed(UpstreamError),
}

#[derive(Debug, Clone)]
struct Slot {
    deployment: usize,
    attempts: u32,
    /// No further attempts here: auth failure, silence, Retry-After beyond the cap, a
    /// refused continuation.
    closed: bool,
}

fn slots(deployments: Vec<usize>) -> Vec<Slot> {
    deployments.into_iter().map(|d| Slot { deployment: d, attempts: 0, closed: false }).collect()
}

/// Drives one request across its plan.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: RetryPolicy,
    slots: Vec<Slot>,
    context_fallbacks: Vec<usize>,
    continuable: Vec<usize>,
    current: usize,
    attempts: u32,
    started_ms: u64,
    /// The failure that broke the stream after output reached the client. From then on
    /// only a continuation helps, and giving up reports this failure, never what a
    /// continuation attempt ran into.
    broken: Option<UpstreamError>,
}

impl Engine {
    pub fn new(plan: Plan, policy: RetryPolicy, now_ms: u64) -> Self {
        Engine {
            policy,
            slots: slots(plan.deployments),
            context_fallbacks: plan.context_fallbacks,
            continuable: plan.continuable,
            current: 0,
            attempts: 0,
            started_ms: now_ms,
            broken: None,
        }
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The first action: an attempt on the first deployment, or a give-up when the plan is empty.
    pub fn start(&mut self) -> Action {
        if self.slots.is_empty() {
            return Action::GiveUp(UpstreamError::new(ErrorClass::Transient, None, "no deployment is available for this model"));
        }
        self.attempt_on(0, 0, AttemptMode::Fresh)
    }

    fn attempt_on(&mut self, slot: usize, after_ms: u64, mode: AttemptMode) -> Action {
        self.current = slot;
        self.slots[slot].attempts += 1;
        self.attempts += 1;
        Action::Attempt { deployment: self.slots[slot].deployment, after_ms, mode, attempt: self.attempts }
    }

    fn open_slot(&self, i: usize) -> bool {
        let s = &self.slots[i];
        !s.closed && s.attempts < self.policy.max_attempts_per_deployment && (self.broken.is_none() || self.continuable.contains(&s.deployment))
    }

    /// The next slot to fail over to: an untried one first (no wait), else one with
    /// attempts left (after a backoff). Never the current one when another exists.
    fn next_slot(&self) -> Option<(usize, bool)> {
        let n = self.slots.len();
        let order = (1..=n).map(|k| (self.current + k) % n);
        if let Some(i) = order.clone().find(|&i| self.slots[i].attempts == 0 && self.open_slot(i)) {
            return Some((i, true));
        }
        order.clone().find(|&i| i != self.current && self.open_slot(i)).map(|i| (i, false)).or_else(|| self.open_slot(self.current).then_some((self.current, false)))
    }

    /// The error to report when giving up: the break that started it all, if any.
    fn give_up(&self, last: UpstreamError) -> Action {
        Action::GiveUp(self.broken.clone().unwrap_or(last))
    }

    /// Reports the outcome of the current attempt and returns what to do next.
    pub fn on_outcome(&mut self, outcome: Outcome, now_ms: u64, jitter: f64) -> Action {
        let err = match outcome {
            Outcome::Success => return Action::Done,
            Outcome::Failed(e) => e,
        };
        if let ErrorClass::StreamBroken { tokens_sent } = err.class {
            if tokens_sent > 0 && self.broken.is_none() {
                self.broken = Some(err.clone());
            }
        }
        let continuing = self.broken.is_some();
        if self.attempts >= self.policy.max_attempts {
            return self.give_up(err);
        }
        let elapsed = now_ms.saturating_sub(self.started_ms);
        if elapsed >= self.policy.total_budget_ms {
            let mut e = err;
            if !matches!(e.class, ErrorClass::StreamBroken { .. }) {
                e.class = ErrorClass::Timeout(TimeoutKind::Total);
            }
            return self.give_up(e);
        }
        let cur = self.current;
        let mut retry_after = None;
        let mut retry_here_first = false;
        match err.class {
            // A continuation the target refused (no prefill, prompt now too long, its
            // policy): that target cannot continue; another may.
            ErrorClass::BadRequest | ErrorClass::ContentPolicy | ErrorClass::ContextLength if continuing => self.slots[cur].closed = true,
            ErrorClass::BadRequest | ErrorClass::ContentPolicy => return Action::GiveUp(err),
            ErrorClass::ContextLength => {
                if self.context_fallbacks.is_empty() {
                    return Action::GiveUp(err);
                }
                // Switch the plan to the larger-context deployments.
                self.slots = slots(std::mem::take(&mut self.context_fallbacks));
                return self.attempt_on(0, 0, AttemptMode::Fresh);
            }
            // Nothing was sent; its cooldown outlasts any backoff of this request.
            ErrorClass::Auth | ErrorClass::NotFound | ErrorClass::BreakerOpen => self.slots[cur].closed = true,
            // A silent deployment is not asked again on this request.
            ErrorClass::Timeout(k) if k != TimeoutKind::Connect => self.slots[cur].closed = true,
            ErrorClass::Timeout(_) | ErrorClass::Transient => retry_here_first = true,
            ErrorClass::RateLimited { retry_after_ms } => {
                if retry_after_ms.is_some_and(|ms| ms > self.policy.max_retry_after_ms) {
                    self.slots[cur].closed = true;
                }
                retry_here_first = retry_after_ms.is_none_or(|ms| ms <= self.policy.retry_after_wait_max_ms);
                retry_after = retry_after_ms;
            }
            // Cut before any output reached the client: like a reset.
            ErrorClass::StreamBroken { tokens_sent: 0 } => retry_here_first = true,
            ErrorClass::StreamBroken { .. } => {}
        }
        let mode = if continuing { AttemptMode::Continue } else { AttemptMode::Fresh };
        let backoff = |attempts: u32| backoff_ms(attempts, self.policy.backoff_base_ms, self.policy.backoff_max_ms, jitter);
        let wait_here = |attempts: u32| backoff(attempts).max(retry_after.unwrap_or(0).min(self.policy.max_retry_after_ms));
        let (next, delay) = if retry_here_first && !continuing && self.policy.on_transient == OnTransient::RetryFirst && self.open_slot(cur) {
            (cur, wait_here(self.slots[cur].attempts))
        } else {
            let Some((next, untried)) = self.next_slot() else { return self.give_up(err) };
            let delay = if untried || (continuing && next != cur) {
                0
            } else if next == cur {
                wait_here(self.slots[next].attempts)
            } else {
                backoff(self.slots[next].attempts)
            };
            (next, delay)
        };
        if elapsed + delay >= self.policy.total_budget_ms {
            return self.give_up(err);
        }
        self.attempt_on(next, delay, mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(class: ErrorClass) -> Outcome {
        Outcome::Failed(UpstreamError::new(class, Some(500), "x"))
    }

    fn engine(deps: &[usize], policy: RetryPolicy) -> Engine {
        Engine::new(Plan { deployments: deps.to_vec(), ..Default::default() }, policy, 0)
    }

    fn continuable(deps: &[usize], continuable: &[usize]) -> Engine {
        Engine::new(Plan { deployments: deps.to_vec(), continuable: continuable.to_vec(), ..Default::default() }, RetryPolicy::default(), 0)
    }

    fn deployment(a: &Action) -> usize {
        match a {
            Action::Attempt { deployment, .. } => *deployment,
            other => panic!("expected an attempt, got {other:?}"),
        }
    }

    fn delay(a: &Action) -> u64 {
        match a {
            Action::Attempt { after_ms, .. } => *after_ms,
            other => panic!("expected an attempt, got {other:?}"),
        }
    }

    #[test]
    fn empty_plan_gives_up() {
        assert!(matches!(engine(&[], RetryPolicy::default()).start(), Action::GiveUp(_)));
    }

    #[test]
    fn transient_fails_over_at_once_then_retries_with_backoff() {
        let mut e = engine(&[7, 8], RetryPolicy::default());
        assert_eq!(deployment(&e.start()), 7);
        let a = e.on_outcome(err(ErrorClass::Transient), 10, 0.5);
        assert_eq!((deployment(&a), delay(&a)), (8, 0), "untried fallback: no wait");
        let a = e.on_outcome(err(ErrorClass::Transient), 20, 0.0);
        assert_eq!(deployment(&a), 7);
        assert_eq!(delay(&a), 100, "second attempt on 7 waits half of base*2^0");
        let a = e.on_outcome(err(ErrorClass::Transient), 200, 0.0);
        assert_eq!(deployment(&a), 8);
        assert!(matches!(e.on_outcome(err(ErrorClass::Transient), 400, 0.0), Action::GiveUp(_)), "4 attempts max");
        assert_eq!(e.attempts(), 4);
    }

    #[test]
    fn single_deployment_is_bounded() {
        let mut e = engine(&[1], RetryPolicy::default());
        e.start();
        let a = e.on_outcome(err(ErrorClass::Transient), 0, 1.0);
        assert_eq!((deployment(&a), delay(&a)), (1, 200));
        assert!(matches!(e.on_outcome(err(ErrorClass::Transient), 300, 0.0), Action::GiveUp(_)), "2 per deployment");
    }

    #[test]
    fn success_is_done() {
        let mut e = engine(&[1], RetryPolicy::default());
        e.start();
        assert_eq!(e.on_outcome(Outcome::Success, 5, 0.0), Action::Done);
    }

    #[test]
    fn bad_request_and_content_policy_never_retry() {
        for class in [ErrorClass::BadRequest, ErrorClass::ContentPolicy] {
            let mut e = engine(&[1, 2], RetryPolicy::default());
            e.start();
            assert!(matches!(e.on_outcome(err(class), 1, 0.0), Action::GiveUp(u) if u.class == class));
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_cap() {
        let mut e = engine(&[1], RetryPolicy::default());
        e.start();
        let a = e.on_outcome(err(ErrorClass::RateLimited { retry_after_ms: Some(3_000) }), 0, 0.0);
        assert_eq!((deployment(&a), delay(&a)), (1, 3_000));
        let mut e = engine(&[1], RetryPolicy::default());
        e.start();
        let a = e.on_outcome(err(ErrorClass::RateLimited { retry_after_ms: Some(60_000) }), 0, 0.0);
        assert!(matches!(a, Action::GiveUp(_)), "beyond the cap: not waited for");
        let mut e = engine(&[1, 2], RetryPolicy::default());
        e.start();
        let a = e.on_outcome(err(ErrorClass::RateLimited { retry_after_ms: Some(3_000) }), 0, 0.0);
        assert_eq!((deployment(&a), delay(&a)), (2, 0), "healthy fallback: fail over at once");
    }

    #[test]
    fn retry_first_keeps_the_primary_within_its_limits() {
        let policy = RetryPolicy { on_transient: OnTransient::RetryFirst, ..Default::default() };
        // A short Retry-After is waited out on the primary.
        let mut e = engine(&[1, 2], policy);
        e.start();
        let a = e.on_outcome(err(ErrorClass::RateLimited { retry_after_ms: Some(1_000) }), 0, 0.0);
        assert_eq!((deployment(&a), delay(&a)), (1, 1_000));
        // A one-off 500: the primary again, after its backoff.
        let mut e = engine(&[1, 2], policy);
        e.start();
        let a = e.on_outcome(err(ErrorClass::Transient), 0, 0.0);
        assert_eq!((deployment(&a), delay(&a)), (1, 100));
        // Its attempts used up: fail over at once.
        let a = e.on_outcome(err(ErrorClass::Transient), 200, 0.0);
        assert_eq!((deployment(&a), delay(&a)), (2, 0));
        // A Retry-After longer than retry_after_wait_max_ms fails over at once.
        let mut e = engine(&[1, 2], policy);
        e.start();
        let a = e.on_outcome(err(ErrorClass::RateLimited { retry_after_ms: Some(5_000) }), 0, 0.0);
        assert_eq!((deployment(&a), delay(&a)), (2, 0));
        // Silence and bad credentials still close the deployment.
        let mut e = engine(&[1, 2], policy);
        e.start();
        assert_eq!(deployment(&e.on_outcome(err(ErrorClass::Timeout(TimeoutKind::FirstByte)), 0, 0.0)), 2);
        // An open breaker is never waited for, even under retry_first.
        let mut e = engine(&[1, 2], policy);
        e.start();
        let a = e.on_outcome(err(ErrorClass::BreakerOpen), 0, 0.0);
        assert_eq!((deployment(&a), delay(&a)), (2, 0));
        // A cut before any output is a transient failure: the primary again.
        let mut e = engine(&[1, 2], policy);
        e.start();
        assert_eq!(deployment(&e.on_outcome(err(ErrorClass::StreamBroken { tokens_sent: 0 }), 0, 0.0)), 1);
        // Bounded by the total budget.
        let mut e = engine(&[1, 2], RetryPolicy { total_budget_ms: 500, ..policy });
        e.start();
        let a = e.on_outcome(err(ErrorClass::RateLimited { retry_after_ms: Some(1_000) }), 0, 0.0);
        assert!(matches!(a, Action::GiveUp(_)), "a wait past the budget is not taken: {a:?}");
    }

    #[test]
    fn auth_and_silence_close_the_deployment() {
        for class in [ErrorClass::Auth, ErrorClass::NotFound, ErrorClass::Timeout(TimeoutKind::FirstToken), ErrorClass::Timeout(TimeoutKind::FirstByte)] {
            let mut e = engine(&[1, 2], RetryPolicy::default());
            e.start();
            assert_eq!(deployment(&e.on_outcome(err(class), 0, 0.0)), 2);
            assert!(matches!(e.on_outcome(err(ErrorClass::Transient), 0, 0.0), Action::Attempt { deployment: 2, .. }));
            let mut e = engine(&[1], RetryPolicy::default());
            e.start();
            assert!(matches!(e.on_outcome(err(class), 0, 0.0), Action::GiveUp(_)), "{class:?} is not retried on the same deployment");
        }
    }

    #[test]
    fn context_length_switches_to_larger_models() {
        let mut e = Engine::new(Plan { deployments: vec![1, 2], context_fallbacks: vec![9], ..Default::default() }, RetryPolicy::default(), 0);
        e.start();
        let a = e.on_outcome(err(ErrorClass::ContextLength), 0, 0.0);
        assert_eq!(deployment(&a), 9);
        let mut e = engine(&[1, 2], RetryPolicy::default());
        e.start();
        assert!(matches!(e.on_outcome(err(ErrorClass::ContextLength), 0, 0.0), Action::GiveUp(_)));
    }

    #[test]
    fn broken_stream_before_tokens_fails_over_fresh() {
        let mut e = engine(&[1, 2], RetryPolicy::default());
        e.start();
        let a = e.on_outcome(err(ErrorClass::StreamBroken { tokens_sent: 0 }), 0, 0.0);
        assert!(matches!(a, Action::Attempt { deployment: 2, mode: AttemptMode::Fresh, .. }));
    }

    #[test]
    fn broken_stream_after_tokens_continues_only_where_continuable() {
        let mut e = continuable(&[1, 2, 3], &[3]);
        e.start();
        let a = e.on_outcome(err(ErrorClass::StreamBroken { tokens_sent: 5 }), 0, 0.0);
        assert!(matches!(a, Action::Attempt { deployment: 3, mode: AttemptMode::Continue, after_ms: 0, .. }), "{a:?}");
        // Once streaming, every later attempt is a continuation, on a continuable target.
        let a = e.on_outcome(err(ErrorClass::Transient), 0, 0.0);
        assert!(matches!(a, Action::Attempt { deployment: 3, mode: AttemptMode::Continue, .. }), "{a:?}");
        // Nothing continuable: the break is final.
        let mut e = continuable(&[1, 2], &[]);
        e.start();
        assert!(matches!(e.on_outcome(err(ErrorClass::StreamBroken { tokens_sent: 5 }), 0, 0.0), Action::GiveUp(u) if u.class == ErrorClass::StreamBroken { tokens_sent: 5 }));
    }

    #[test]
    fn a_refused_continuation_tries_the_next_then_reports_the_original_break() {
        let mut e = continuable(&[1, 2, 3], &[2, 3]);
        e.start();
        let broke = UpstreamError::new(ErrorClass::StreamBroken { tokens_sent: 4 }, None, "stream cut: reset");
        let a = e.on_outcome(Outcome::Failed(broke.clone()), 0, 0.0);
        assert_eq!(deployment(&a), 2);
        let refused = UpstreamError::new(ErrorClass::BadRequest, Some(400), "This model does not support assistant message prefill.");
        let a = e.on_outcome(Outcome::Failed(refused.clone()), 0, 0.0);
        assert_eq!(deployment(&a), 3, "a refused prefill closes that target only");
        assert_eq!(e.on_outcome(Outcome::Failed(refused), 0, 0.0), Action::GiveUp(broke), "the original failure, never the 400");
    }

    #[test]
    fn total_budget_bounds_everything() {
        let policy = RetryPolicy { total_budget_ms: 1_000, ..Default::default() };
        let mut e = engine(&[1, 2], policy);
        e.start();
        let a = e.on_outcome(err(ErrorClass::Transient), 1_000, 0.0);
        assert!(matches!(a, Action::GiveUp(u) if u.class == ErrorClass::Timeout(TimeoutKind::Total)));
        let mut e = engine(&[1], policy);
        e.start();
        assert!(matches!(e.on_outcome(err(ErrorClass::RateLimited { retry_after_ms: Some(2_000) }), 0, 0.0), Action::GiveUp(_)), "a wait past the budget is not taken");
    }

    /// Exhaustive: for every sequence of failures up to length 5 over every class, under
    /// both transient policies, with and without continuable targets, the engine ends
    /// within `max_attempts`, never waits past the budget, never retries a closed
    /// deployment, only continues on continuable targets, and once output reached the
    /// client gives up with the break itself.
    #[test]
    fn exhaustive_sequences_terminate_within_bounds() {
        let classes = [
            ErrorClass::Transient,
            ErrorClass::RateLimited { retry_after_ms: Some(500) },
            ErrorClass::RateLimited { retry_after_ms: Some(50_000) },
            ErrorClass::Auth,
            ErrorClass::BadRequest,
            ErrorClass::Timeout(TimeoutKind::Connect),
            ErrorClass::Timeout(TimeoutKind::Idle),
            ErrorClass::StreamBroken { tokens_sent: 0 },
            ErrorClass::StreamBroken { tokens_sent: 3 },
            ErrorClass::BreakerOpen,
        ];
        let n = classes.len();
        for on_transient in [OnTransient::Failover, OnTransient::RetryFirst] {
            for cont in [vec![], vec![2], vec![1, 2, 3]] {
                let policy = RetryPolicy { on_transient, ..Default::default() };
                for len in 1..=5u32 {
                    for code in 0..n.pow(len) {
                        let mut e = Engine::new(Plan { deployments: vec![1, 2, 3], continuable: cont.clone(), ..Default::default() }, policy, 0);
                        let mut a = e.start();
                        let mut now = 0;
                        let mut closed = std::collections::HashSet::new();
                        let mut broke = false;
                        let mut c = code;
                        let mut steps = 0;
                        while let Action::Attempt { deployment, after_ms, mode, .. } = a {
                            assert!(!closed.contains(&deployment), "retried closed deployment {deployment}");
                            assert_eq!(mode == AttemptMode::Continue, broke);
                            if broke {
                                assert!(cont.contains(&deployment), "continued on {deployment}, not continuable");
                            }
                            now += after_ms;
                            assert!(now < policy.total_budget_ms);
                            let class = classes[c % n];
                            c /= n;
                            if class == (ErrorClass::StreamBroken { tokens_sent: 3 }) {
                                broke = true;
                            }
                            let closes = matches!(class, ErrorClass::Auth | ErrorClass::BreakerOpen | ErrorClass::Timeout(TimeoutKind::Idle) | ErrorClass::RateLimited { retry_after_ms: Some(50_000) }) || (broke && class == ErrorClass::BadRequest);
                            if closes {
                                closed.insert(deployment);
                            }
                            a = e.on_outcome(err(class), now, 0.3);
                            steps += 1;
                            assert!(steps <= policy.max_attempts);
                        }
                        if let (true, Action::GiveUp(u)) = (broke, &a) {
                            assert_eq!(u.class, ErrorClass::StreamBroken { tokens_sent: 3 }, "gave up with the break");
                        }
                        assert!(e.attempts() <= policy.max_attempts);
                    }
                }
            }
        }
    }
}
