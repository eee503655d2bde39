//! [`Stream`]: a streamed chat completion, driven across its model's deployments. It owns
//! the client's view ([`StreamRelay`]) and the attempt being read ([`AttemptStream`]):
//! failures before the first output fail over invisibly; after it, a break is continued
//! only on a target that can take a continuation, behind the seam check, or ends with an
//! in-band error and no terminator. Tool output already sent is never continued.

use super::attempts::{Attempts, Next, Turn};
use super::complete::Outbound;
use super::context::{cost, timeout, Context};
use super::continuation::{continuation, Continuation};
use super::seam::{self, Verdict};
use crate::api::{ChatRequest, Usage};
use crate::auth::Region;
use crate::config::ContinueMode;
use crate::failover::{AttemptMode, ErrorClass, TimeoutKind, UpstreamError};
use crate::providers::{self, classify_http_error};
use crate::relay::{AttemptStream, Step, StreamRelay};
use crate::routing::ModelRoute;

#[derive(Debug)]
pub enum StreamStep {
    Wait(u64),
    /// Send it and wait at most `within_ms` for the response headers.
    Send(Outbound),
    /// The answer is complete: settle, then [`Stream::close`] writes the closing frames.
    Done(Finished),
    /// The request failed: before any output as an HTTP error, after it as
    /// [`StreamRelay::error_frame`] (see [`Stream::committed`]).
    GiveUp(UpstreamError),
}

/// After feeding the attempt in flight: keep reading it, or ask [`Stream::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    More,
    Over,
}

/// How the answer ended, for settlement, usage and the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub deployment: usize,
    /// The model that answered, as the provider named it.
    pub model: String,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// The answer includes a continuation after a break.
    pub continued: Option<Continuation>,
    /// The client got part of an answer and an in-band error.
    pub interrupted: bool,
}

pub struct Stream<'a> {
    ctx: Context<'a>,
    req: ChatRequest,
    attempts: Attempts<'a>,
    relay: StreamRelay,
    reading: Option<AttemptStream>,
    /// How the attempt in flight continues, if it does.
    how: Option<Continuation>,
    /// The continuation the client received, if any.
    continued: Option<Continuation>,
    /// The failure that broke the stream after output.
    broken: Option<UpstreamError>,
    /// The last deployment whose output reached the client.
    delivered_by: Option<usize>,
    /// Attempts whose output reached the client before they broke: deployment, model and
    /// usage (the provider's, else estimated), billed with the answer.
    spent: Vec<(usize, String, Usage)>,
    /// The client's token count when the attempt in flight opened.
    tokens_at_open: u64,
    answered: Option<usize>,
    deadline_ms: u64,
    limited_by_total: bool,
    waiting_ms: u64,
}

impl<'a> Stream<'a> {
    /// `id` is the one id the client sees across attempts; `keep` keeps a transcript for
    /// the response caches.
    pub fn new(ctx: Context<'a>, req: ChatRequest, model: &ModelRoute, region: Option<Region>, id: String, keep: bool, start: super::Start) -> Self {
        let now_ms = start.now_ms;
        let mut rng = super::Rng::new(start.seed);
        let mut plan = ctx.router.plan(model, region, now_ms, rng.unit(), rng.unit());
        let mode = ctx.route.retry.continue_broken_streams;
        plan.continuable = plan.deployments.iter().chain(&plan.context_fallbacks).copied().filter(|&d| match mode {
            ContinueMode::Off => false,
            ContinueMode::Prefill => ctx.deployment(d).prefill,
            ContinueMode::Instruction => true,
        }).collect();
        let attempts = Attempts::new(ctx.router, plan, ctx.route.policy(), now_ms, rng.next_u64());
        let mut relay = StreamRelay::new(id, now_ms / 1000, req.wants_stream_usage());
        if keep {
            relay.keep_transcript();
        }
        Stream {
            deadline_ms: now_ms + ctx.route.timeouts.total_ms,
            ctx,
            req,
            attempts,
            relay,
            reading: None,
            how: None,
            continued: None,
            broken: None,
            delivered_by: None,
            spent: Vec::new(),
            tokens_at_open: 0,
            answered: None,
            limited_by_total: false,
            waiting_ms: 0,
        }
    }

    pub fn next(&mut self, now_ms: u64) -> StreamStep {
        loop {
            match self.attempts.next(now_ms) {
                Next::Wait(ms) => return StreamStep::Wait(ms),
                Next::Go(turn) => {
                    let d = self.ctx.deployment(turn.deployment);
                    let how = (turn.mode == AttemptMode::Continue).then_some(if d.prefill { Continuation::Prefill } else { Continuation::Instruction });
                    let body = match how {
                        None => std::borrow::Cow::Borrowed(&self.req),
                        Some(h) => std::borrow::Cow::Owned(continuation(&self.req, self.relay.text_sent(), d.kind, h)),
                    };
                    match providers::build_chat(d.kind, d.target(self.ctx.default_max_tokens), &body, true) {
                        Ok(request) => {
                            self.how = how;
                            let within_ms = self.bound(self.ctx.route.timeouts.first_byte_ms, now_ms);
                            return StreamStep::Send(Outbound { request, turn, within_ms });
                        }
                        Err(e) => self.attempts.failed(UpstreamError::new(ErrorClass::BadRequest, None, e.to_string()), now_ms),
                    }
                }
                Next::Done => {
                    let deployment = self.answered.expect("Done follows an answer");
                    let model = self.relay.model().to_string();
                    let last = (deployment, model.clone(), self.relay.usage());
                    let (usage, cost_usd) = self.bill(Some(&last));
                    return StreamStep::Done(Finished { deployment, model, usage, cost_usd, continued: self.continued, interrupted: false });
                }
                Next::GiveUp(e) => return StreamStep::GiveUp(e),
            }
        }
    }

    /// A phase's wait, cut to what is left of the request's budget.
    fn bound(&mut self, phase_ms: u64, now_ms: u64) -> u64 {
        let left = self.deadline_ms.saturating_sub(now_ms).max(1);
        self.limited_by_total = left < phase_ms;
        self.waiting_ms = left.min(phase_ms);
        self.waiting_ms
    }

    /// The attempt in flight answered 2xx: its body is the stream.
    pub fn on_open(&mut self, now_ms: u64) {
        let Some(turn) = self.attempts.current() else { return };
        let d = self.ctx.deployment(turn.deployment);
        let continuing = turn.mode == AttemptMode::Continue;
        if continuing {
            self.relay.hold_continuation();
        }
        self.relay.begin_attempt();
        self.tokens_at_open = self.relay.tokens_sent();
        self.reading = Some(AttemptStream::new(d.kind, "", now_ms / 1000, continuing));
    }

    /// The attempt in flight answered with an error status and this body.
    pub fn on_refused(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8], now_ms: u64) {
        let Some(turn) = self.attempts.current() else { return };
        let e = classify_http_error(self.ctx.deployment(turn.deployment).kind, status, headers, body, now_ms);
        self.fail(e, now_ms);
    }

    /// How long to wait for the next piece of the attempt in flight.
    pub fn read_within_ms(&mut self, now_ms: u64) -> u64 {
        let t = self.ctx.route.timeouts;
        let phase = match self.reading.as_ref().map(AttemptStream::timer) {
            Some(TimeoutKind::Idle) => t.idle_ms,
            _ => t.first_token_ms,
        };
        self.bound(phase, now_ms)
    }

    pub fn on_bytes(&mut self, bytes: &[u8], now_ms: u64, out: &mut Vec<Vec<u8>>) -> Read {
        let Some(a) = self.reading.as_mut() else { return Read::Over };
        let step = a.on_bytes(bytes, &mut self.relay, out);
        self.after(step, now_ms, out)
    }

    /// The body ended.
    pub fn on_eof(&mut self, now_ms: u64, out: &mut Vec<Vec<u8>>) -> Read {
        let Some(a) = self.reading.as_mut() else { return Read::Over };
        let step = a.on_eof(&mut self.relay, out);
        self.after(step, now_ms, out)
    }

    /// Nothing arrived within the wait the driver gave.
    pub fn on_timeout(&mut self, now_ms: u64, out: &mut Vec<Vec<u8>>) -> Read {
        match self.reading.as_mut() {
            None => {
                let e = timeout(TimeoutKind::FirstByte, self.limited_by_total, self.waiting_ms);
                self.fail(e, now_ms);
                Read::Over
            }
            Some(a) => {
                let step = a.on_timeout(&self.relay, self.waiting_ms);
                let step = match step {
                    Step::Failed(mut e) if self.limited_by_total && !matches!(e.class, ErrorClass::StreamBroken { .. }) => {
                        e.class = ErrorClass::Timeout(TimeoutKind::Total);
                        Step::Failed(e)
                    }
                    other => other,
                };
                self.after(step, now_ms, out)
            }
        }
    }

    /// The connection failed: before the response (`connect_timeout` when it was the
    /// connect timer), or mid-body.
    pub fn on_transport_error(&mut self, message: &str, connect_timeout: bool, now_ms: u64, out: &mut Vec<Vec<u8>>) -> Read {
        match self.reading.as_mut() {
            None => {
                self.fail(super::transport_error(message, connect_timeout), now_ms);
                Read::Over
            }
            Some(a) => {
                let step = a.on_transport_error(&self.relay, message);
                self.after(step, now_ms, out)
            }
        }
    }

    /// The client went away: nothing more is read or sent. What it received is still
    /// accounted for ([`Self::interrupted`]).
    pub fn on_client_gone(&mut self, now_ms: u64) {
        self.reading = None;
        self.account_delivered();
        self.attempts.abandon(now_ms);
    }

    /// Books the output the attempt in flight delivered to the client, once.
    fn account_delivered(&mut self) {
        let delivered = self.relay.tokens_sent().saturating_sub(self.tokens_at_open);
        if let (Some(turn), true) = (self.attempts.current(), delivered > 0 && self.relay.committed()) {
            let mut usage = self.relay.usage();
            if usage.completion_tokens == 0 {
                usage = Usage::new(self.prompt_estimate(), delivered);
            }
            self.spent.push((turn.deployment, self.relay.model().to_string(), usage));
            self.tokens_at_open = self.relay.tokens_sent();
        }
    }

    fn after(&mut self, step: Step, now_ms: u64, out: &mut Vec<Vec<u8>>) -> Read {
        if self.reading.as_ref().is_some_and(AttemptStream::got_output) {
            self.attempts.healthy(now_ms);
        }
        let complete = step == Step::Complete;
        if !matches!(step, Step::Failed(_)) && self.seam(complete, now_ms, out) {
            return Read::Over;
        }
        if self.relay.gated_text().is_none() && self.reading.as_ref().is_some_and(AttemptStream::got_output) {
            self.delivered_by = self.attempts.current().map(|t| t.deployment);
        }
        match step {
            Step::Continue => Read::More,
            Step::Complete => {
                self.reading = None;
                self.answered = self.attempts.current().map(|t| t.deployment);
                self.attempts.succeeded(now_ms);
                Read::Over
            }
            Step::Failed(e) => {
                self.fail(e, now_ms);
                Read::Over
            }
        }
    }

    /// Judges a held continuation; true when it was discarded (the request is over).
    fn seam(&mut self, complete: bool, now_ms: u64, out: &mut Vec<Vec<u8>>) -> bool {
        let Some(held) = self.relay.gated_text() else { return false };
        match seam::judge(self.relay.text_sent(), held, complete) {
            Verdict::Undecided => false,
            Verdict::Accept => {
                self.relay.release_gate(out);
                // The weakest mark wins: one unverifiable part makes the answer unverifiable.
                if self.continued != Some(Continuation::Instruction) {
                    self.continued = self.how;
                }
                false
            }
            Verdict::Reject(why) => {
                self.relay.discard_gate();
                self.reading = None;
                let name = self.attempts.current().map(|t| self.ctx.deployment(t.deployment).name.as_str()).unwrap_or("");
                let mut e = self.broken.clone().unwrap_or_else(|| self.relay.broken("the stream broke"));
                e.message = format!("{}; the continuation from {name} was discarded: {why}", e.message);
                self.attempts.stop(e, "seam_rejected", now_ms);
                true
            }
        }
    }

    fn fail(&mut self, e: UpstreamError, now_ms: u64) {
        self.reading = None;
        self.relay.attempt_failed();
        self.account_delivered();
        if let ErrorClass::StreamBroken { tokens_sent } = e.class {
            if tokens_sent > 0 && self.broken.is_none() {
                self.broken = Some(e.clone());
            }
        }
        // Another model cannot carry on someone else's tool call.
        if self.relay.tool_output_sent() {
            let class = e.class.as_str();
            let e = self.broken.clone().unwrap_or(e);
            self.attempts.stop(e, class, now_ms);
        } else {
            self.attempts.failed(e, now_ms);
        }
    }

    /// Prompt tokens estimated at four bytes each (for attempts that broke before the
    /// provider counted them).
    fn prompt_estimate(&self) -> u64 {
        let prompt: usize = self.req.messages.iter().map(|m| m.text_content().len()).sum();
        (prompt / 4) as u64
    }

    /// The usage and cost of every attempt whose output reached the client, plus `last`
    /// (the answering one): each priced at its own deployment.
    fn bill(&self, last: Option<&(usize, String, Usage)>) -> (Usage, Option<f64>) {
        let mut total = Usage::default();
        let mut cost_usd: Option<f64> = None;
        for (d, model, u) in self.spent.iter().chain(last) {
            total = Usage::new(total.prompt_tokens + u.prompt_tokens, total.completion_tokens + u.completion_tokens);
            if let Some(c) = cost(self.ctx.deployment(*d), self.ctx.prices, model, u) {
                cost_usd = Some(cost_usd.unwrap_or(0.0) + c);
            }
        }
        if self.spent.is_empty() {
            if let Some((_, _, u)) = last {
                total = *u;
            }
        }
        (total, cost_usd)
    }

    /// True once the first output went to the client: the response status is sent.
    pub fn committed(&self) -> bool {
        self.relay.committed()
    }

    /// The attempt in flight (or the last one made).
    pub fn turn(&self) -> Option<Turn> {
        self.attempts.current().or(self.attempts.last())
    }

    pub fn attempts(&mut self) -> &mut Attempts<'a> {
        &mut self.attempts
    }

    /// The chunks the client received (kept with `keep`).
    pub fn relay(&self) -> &StreamRelay {
        &self.relay
    }

    /// The closing frames after [`StreamStep::Done`]: the usage chunk if asked for, the
    /// answer's metadata as an SSE comment (cost, deployment, continuation), `[DONE]`.
    pub fn close(&mut self, f: &Finished, out: &mut Vec<Vec<u8>>) {
        let mut meta = format!("x-meridian-deployment={}", self.ctx.deployment(f.deployment).name);
        if let Some(c) = f.cost_usd {
            meta = format!("x-meridian-cost-usd={c:.8} {meta}");
        }
        if let Some(c) = f.continued {
            meta.push_str(&format!(" x-meridian-continued={}", c.as_str()));
        }
        self.relay.finish(Some(&meta), out);
    }

    /// What the client received of an answer that ended without its end — an in-band
    /// error, or the client left: who delivered it last, and the usage and cost of every
    /// attempt whose output reached the client (the provider's count, else one token per
    /// chunk sent).
    pub fn interrupted(&self) -> Option<Finished> {
        let deployment = self.delivered_by.filter(|_| self.relay.committed())?;
        let (usage, cost_usd) = self.bill(None);
        Some(Finished { deployment, model: self.relay.model().to_string(), usage, cost_usd, continued: self.continued, interrupted: true })
    }

    /// The answer as the response caches keep it: never one that includes a continuation
    /// (its mark would be lost on replay).
    pub fn answer_to_cache(&self, f: &Finished, now_s: u64) -> Option<crate::cache::CachedAnswer> {
        if f.continued.is_some() {
            return None;
        }
        crate::cache::CachedAnswer::from_chunks(self.relay.transcript(), f.usage, now_s)
    }
}
