//! A webhook receiver for tests: a minimal HTTP/1.1 server on loopback that records each
//! POST's signature header and body and answers 200 — or 503 to the first `refuse`
//! calls, to exercise the sender's retries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// (signature header, body) of each call.
type Calls = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

pub struct WebhookSink {
    pub url: String,
    received: Calls,
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        Self::refusing(0).await
    }

    /// A receiver that answers 503 to its first `refuse` calls (they are not recorded).
    pub async fn refusing(refuse: usize) -> WebhookSink {
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: Calls = Arc::default();
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let sink = sink.clone();
                let refused = refused.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let value = |name: &str| head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::trim).map(str::to_string));
                    let length: usize = value("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    while buf.len() < head_end + length {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    if refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < refuse {
                        let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        return;
                    }
                    let signature = value("x-meridian-signature").unwrap_or_default();
                    sink.lock().unwrap().push((signature, buf[head_end..head_end + length].to_vec()));
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                });
            }
        });
        WebhookSink { url, received }
    }

    /// The (signature, body) pairs received, once there are at least `n` (bounded: 30 s).
    pub async fn wait_for(&self, n: usize) -> Vec<(String, Vec<u8>)> {
        for _ in 0..600 {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = self.received.lock().unwrap().clone();
        panic!("only {} webhook calls arrived, expected {n}", got.len());
    }
}
