//! `GET /v1/jobs/stream`: the caller's tenant's job events as they happen — over
//! WebSocket when the request asks to upgrade, else as Server-Sent Events (`event:
//! job.succeeded`, `data: {...}`, a comment every 15 s to keep proxies from closing the
//! stream). `?job=<id>` narrows it to one job. Events of other tenants never reach it:
//! the hub keys subscribers by the authenticated tenant.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use meridian_shared::media::JobEvent;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use super::context;
use crate::knowledge::Caller;
use crate::state::SharedState;

#[derive(Deserialize)]
pub struct StreamParams {
    #[serde(default)]
    job: Option<String>,
}

fn wanted(e: &JobEvent, job: &Option<String>) -> bool {
    job.as_ref().is_none_or(|j| *j == e.job_id)
}

pub async fn stream(State(st): State<SharedState>, who: Option<Caller>, Query(q): Query<StreamParams>, req: Request) -> Response {
    let cx = match context(&st, who) {
        Ok(cx) => cx,
        Err(e) => return e.into_response(),
    };
    let rx = cx.media.hub.subscribe(&cx.principal.tenant);
    let upgrade = req.headers().get("upgrade").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return sse(rx, q.job);
    }
    let (mut parts, _) = req.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws.on_upgrade(move |socket| websocket(socket, rx, q.job)),
        Err(rejection) => rejection.into_response(),
    }
}

fn sse(rx: broadcast::Receiver<JobEvent>, job: Option<String>) -> Response {
    let frames = futures_util::stream::unfold((rx, job), |(mut rx, job)| async move {
        loop {
            match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
                Err(_) => return Some((Ok::<_, Infallible>(bytes::Bytes::from_static(b": keep-alive\n\n")), (rx, job))),
                Ok(Ok(e)) if wanted(&e, &job) => {
                    let frame = format!("event: {}\ndata: {}\n\n", e.kind, serde_json::to_string(&e).expect("events serialise"));
                    return Some((Ok(bytes::Bytes::from(frame)), (rx, job)));
                }
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    });
    let mut r = axum::body::Body::from_stream(frames).into_response();
    r.headers_mut().insert("content-type", HeaderValue::from_static("text/event-stream; charset=utf-8"));
    r.headers_mut().insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

async fn websocket(mut socket: WebSocket, mut rx: broadcast::Receiver<JobEvent>, job: Option<String>) {
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(e) if wanted(&e, &job) => {
                    if socket.send(Message::Text(serde_json::to_string(&e).expect("events serialise").into())).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
        }
    }
}
