//! The Meridian edge Worker: every request enters here.
#![cfg(target_arch = "wasm32")]

use worker::*;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let ns = env.durable_object("RATE_LIMITER")?;
    let stub = ns.id_from_name("t1")?.get_stub()?;
    let r = stub.fetch_with_str("https://do/ping").await?.text().await?;
    Response::ok(format!("edge {} {}", req.path(), r))
}

#[durable_object]
pub struct RateLimiter {
    state: State,
    count: std::cell::Cell<u64>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter { state, count: std::cell::Cell::new(0) }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        self.count.set(self.count.get() + 1);
        let _ = &self.state;
        Response::ok(format!("do {}", self.count.get()))
    }
}
