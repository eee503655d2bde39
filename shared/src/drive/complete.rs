//! [`Complete`]: a call answered in one body (a non-streamed chat completion, an
//! embeddings request), driven across its model's deployments.

use super::attempts::{Attempts, Next, Turn};
use super::context::{cost, timeout, Context};
use crate::api::{ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, Usage};
use crate::auth::Region;
use crate::failover::{ErrorClass, TimeoutKind, UpstreamError};
use crate::providers::{self, classify_http_error, UpstreamRequest};
use crate::routing::{Deployment, ModelRoute};

/// What one kind of call sends and how its answer is read.
pub trait Call {
    type Output;
    fn build(&self, d: &Deployment, default_max_tokens: u32) -> Result<UpstreamRequest, UpstreamError>;
    fn parse(&self, d: &Deployment, body: &[u8], now_ms: u64) -> Result<Self::Output, UpstreamError>;
    fn usage(out: &Self::Output) -> Usage;
    /// The model that answered, as the provider named it.
    fn model(out: &Self::Output) -> &str;
}

fn unbuildable(e: crate::api::GatewayError) -> UpstreamError {
    UpstreamError::new(ErrorClass::BadRequest, None, e.to_string())
}

pub struct ChatCall<'r>(pub &'r ChatRequest);

impl Call for ChatCall<'_> {
    type Output = ChatResponse;

    fn build(&self, d: &Deployment, default_max_tokens: u32) -> Result<UpstreamRequest, UpstreamError> {
        providers::build_chat(d.kind, d.target(default_max_tokens), self.0, false).map_err(unbuildable)
    }

    fn parse(&self, d: &Deployment, body: &[u8], now_ms: u64) -> Result<ChatResponse, UpstreamError> {
        providers::parse_chat(d.kind, 200, &[], body, now_ms)
    }

    fn usage(out: &ChatResponse) -> Usage {
        out.usage.unwrap_or_default()
    }

    fn model(out: &ChatResponse) -> &str {
        &out.model
    }
}

pub struct EmbedCall<'r>(pub &'r EmbeddingsRequest);

impl Call for EmbedCall<'_> {
    type Output = EmbeddingsResponse;

    fn build(&self, d: &Deployment, default_max_tokens: u32) -> Result<UpstreamRequest, UpstreamError> {
        providers::build_embeddings(d.kind, d.target(default_max_tokens), self.0).map_err(unbuildable)
    }

    fn parse(&self, d: &Deployment, body: &[u8], now_ms: u64) -> Result<EmbeddingsResponse, UpstreamError> {
        providers::parse_embeddings(d.kind, 200, &[], body, now_ms)
    }

    fn usage(out: &EmbeddingsResponse) -> Usage {
        Usage::new(out.usage.prompt_tokens, 0)
    }

    fn model(out: &EmbeddingsResponse) -> &str {
        &out.model
    }
}

/// One request to send, and how long to wait for it: a whole answer (headers and body)
/// for [`Complete`], the response headers for [`super::Stream`].
#[derive(Debug)]
pub struct Outbound {
    pub request: UpstreamRequest,
    pub turn: Turn,
    pub within_ms: u64,
}

/// A finished call: its output, the deployment that produced it, what it cost.
#[derive(Debug)]
pub struct Answered<O> {
    pub output: O,
    pub deployment: usize,
    pub cost_usd: Option<f64>,
}

#[derive(Debug)]
pub enum Step<O> {
    Wait(u64),
    Send(Outbound),
    Done(Answered<O>),
    GiveUp(UpstreamError),
}

pub struct Complete<'a, C: Call> {
    ctx: Context<'a>,
    call: C,
    attempts: Attempts<'a>,
    answer: Option<(C::Output, usize)>,
    deadline_ms: u64,
    limited_by_total: bool,
    within_ms: u64,
}

impl<'a, C: Call> Complete<'a, C> {
    pub fn new(ctx: Context<'a>, call: C, model: &ModelRoute, region: Option<Region>, start: super::Start) -> Self {
        let now_ms = start.now_ms;
        let mut rng = super::Rng::new(start.seed);
        let plan = ctx.router.plan(model, region, now_ms, rng.unit(), rng.unit());
        let attempts = Attempts::new(ctx.router, plan, ctx.route.policy(), now_ms, rng.next_u64());
        Complete { deadline_ms: now_ms + ctx.route.timeouts.total_ms, ctx, call, attempts, answer: None, limited_by_total: false, within_ms: 0 }
    }

    pub fn next(&mut self, now_ms: u64) -> Step<C::Output> {
        loop {
            match self.attempts.next(now_ms) {
                Next::Wait(ms) => return Step::Wait(ms),
                Next::Go(turn) => {
                    let d = self.ctx.deployment(turn.deployment);
                    match self.call.build(d, self.ctx.default_max_tokens) {
                        Ok(request) => {
                            let left = self.deadline_ms.saturating_sub(now_ms).max(1);
                            let bound = self.ctx.route.timeouts.response_ms;
                            self.limited_by_total = left < bound;
                            self.within_ms = left.min(bound);
                            return Step::Send(Outbound { request, turn, within_ms: self.within_ms });
                        }
                        Err(e) => self.attempts.failed(e, now_ms),
                    }
                }
                Next::Done => {
                    let (output, deployment) = self.answer.take().expect("Done follows an answer");
                    let cost_usd = cost(self.ctx.deployment(deployment), self.ctx.prices, C::model(&output), &C::usage(&output));
                    return Step::Done(Answered { output, deployment, cost_usd });
                }
                Next::GiveUp(e) => return Step::GiveUp(e),
            }
        }
    }

    /// The whole response of the attempt in flight.
    pub fn on_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8], now_ms: u64) {
        let Some(turn) = self.attempts.current() else { return };
        let d = self.ctx.deployment(turn.deployment);
        let parsed = if (200..300).contains(&status) { self.call.parse(d, body, now_ms) } else { Err(classify_http_error(d.kind, status, headers, body, now_ms)) };
        match parsed {
            Ok(out) => {
                self.answer = Some((out, turn.deployment));
                self.attempts.succeeded(now_ms);
            }
            Err(e) => self.attempts.failed(e, now_ms),
        }
    }

    /// No whole answer within `within_ms`; `headers_seen` says whether it had begun.
    pub fn on_timeout(&mut self, headers_seen: bool, now_ms: u64) {
        let kind = if headers_seen { TimeoutKind::FirstToken } else { TimeoutKind::FirstByte };
        self.attempts.failed(timeout(kind, self.limited_by_total, self.within_ms), now_ms);
    }

    /// The connection failed, or the body broke or was too large.
    pub fn on_transport_error(&mut self, e: UpstreamError, now_ms: u64) {
        self.attempts.failed(e, now_ms);
    }

    pub fn attempts(&mut self) -> &mut Attempts<'a> {
        &mut self.attempts
    }
}
