//! Reading an SSE response the way a client does.

use serde_json::Value;

/// A parsed SSE response: the data payloads in order, and whether `[DONE]` closed it.
#[derive(Debug)]
pub struct Sse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub events: Vec<Value>,
    pub done: bool,
    pub raw: String,
}

impl Sse {
    pub fn text(&self) -> String {
        self.events.iter().filter_map(|e| e.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect()
    }

    pub fn error(&self) -> Option<&Value> {
        self.events.iter().find_map(|e| e.get("error"))
    }

    pub fn usage(&self) -> Option<&Value> {
        self.events.iter().find_map(|e| e.get("usage").filter(|u| !u.is_null()))
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.events.iter().find_map(|e| e.pointer("/choices/0/finish_reason").and_then(Value::as_str))
    }
}

pub async fn read_sse(r: reqwest::Response) -> Sse {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let raw = r.text().await.unwrap_or_default();
    let mut events = Vec::new();
    let mut done = false;
    for block in raw.split("\n\n") {
        let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
        if data.is_empty() {
            continue;
        }
        if data == "[DONE]" {
            done = true;
        } else if let Ok(v) = serde_json::from_str(&data) {
            events.push(v);
        }
    }
    Sse { status, headers, events, done, raw }
}

