//! Plays a stream: frames before the answer, one frame per token, the finish frames and
//! the terminator, with pacing and the stream faults applied at token positions.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::faults::Faults;

/// Where a stream reports how it ended (the attempt log entry of its request).
#[derive(Clone)]
pub struct End(pub Option<(std::sync::Arc<crate::State>, u64)>);

impl End {
    fn mark(&self, how: &str) {
        if let Some((st, seq)) = &self.0 {
            st.log.end(*seq, how);
        }
    }
}

pub struct Script {
    pub head: Vec<Bytes>,
    pub tokens: Vec<Bytes>,
    pub finish: Vec<Bytes>,
    pub terminator: Vec<Bytes>,
    pub error_event: Bytes,
}

const MALFORMED: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\"tr\n\n";

type Frame = Result<Bytes, std::io::Error>;

async fn send(tx: &mpsc::Sender<Frame>, b: Bytes) -> bool {
    tx.send(Ok(b)).await.is_ok()
}

async fn play(script: Script, f: Faults, tx: mpsc::Sender<Frame>, end: End) {
    let how = play_frames(script, f, &tx).await;
    end.mark(how);
}

/// Plays the frames; returns how the stream ended.
async fn play_frames(script: Script, f: Faults, tx: &mpsc::Sender<Frame>) -> &'static str {
    let tx = tx.clone();
    for b in script.head {
        if !send(&tx, b).await {
            return "client_gone";
        }
    }
    if let Some(d) = f.ttft {
        tokio::time::sleep(d).await;
    }
    let gap = f.tps.filter(|&t| t > 0).map(|t| Duration::from_micros(1_000_000 / t));
    for (i, tok) in script.tokens.into_iter().enumerate() {
        if f.cut_after == Some(i) {
            // Let the frames already queued reach the socket, so the client really has
            // the first i tokens when the connection dies.
            while tx.capacity() < tx.max_capacity() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock fault: cut"))).await;
            return "cut";
        }
        if f.stall_after == Some(i) {
            tx.closed().await; // hold the connection open until the client gives up
            return "stall";
        }
        if f.malformed_after == Some(i) && !send(&tx, Bytes::from_static(MALFORMED)).await {
            return "malformed";
        }
        if f.error_after == Some(i) {
            let _ = send(&tx, script.error_event).await;
            return "error_event";
        }
        if i > 0 {
            if let Some(g) = gap {
                tokio::time::sleep(g).await;
            }
        }
        if !send(&tx, tok).await {
            return if f.malformed_after.is_some_and(|m| m <= i) { "malformed" } else { "client_gone" };
        }
    }
    if f.no_done {
        // OpenAI/Anthropic: finish frames but no terminator. Gemini's finish frame is its terminator.
        if !script.terminator.is_empty() {
            for b in script.finish {
                send(&tx, b).await;
            }
        }
        return "no_done";
    }
    for b in script.finish.into_iter().chain(script.terminator) {
        if !send(&tx, b).await {
            return "client_gone";
        }
    }
    "completed"
}

pub fn body(script: Script, faults: Faults, end: End) -> Body {
    let (tx, rx) = mpsc::channel::<Frame>(32);
    tokio::spawn(play(script, faults, tx, end));
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) }))
}
