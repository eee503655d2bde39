//! The Meridian edge Worker: every request enters here.
#![cfg(target_arch = "wasm32")]

use worker::*;

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Response::ok("meridian edge")
}
