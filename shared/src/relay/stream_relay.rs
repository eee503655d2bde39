//! [`StreamRelay`]: one streamed answer as the client sees it.

use crate::api::{ChatChunk, Usage};
use crate::failover::{ErrorClass, UpstreamError};

#[derive(Debug)]
pub struct StreamRelay {
    id: String,
    created: u64,
    model: String,
    text_sent: String,
    tool_output_sent: bool,
    tokens_sent: u64,
    held: Vec<ChatChunk>,
    usage: Option<Usage>,
    committed: bool,
    want_usage: bool,
    /// The chunks the client received, kept when the answer is to be cached.
    transcript: Option<Vec<ChatChunk>>,
    /// A continuation held back until the seam check decides.
    gate: Option<Gate>,
}

#[derive(Debug, Default)]
struct Gate {
    chunks: Vec<ChatChunk>,
    text: String,
    /// The continuation's own usage and model name: the answer's only once it is accepted.
    usage: Option<Usage>,
    model: Option<String>,
}

pub(crate) fn sse_frame(c: &ChatChunk, out: &mut Vec<Vec<u8>>) {
    let mut b = Vec::with_capacity(256);
    b.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut b, c).expect("chunk serialises");
    b.extend_from_slice(b"\n\n");
    out.push(b);
}

impl StreamRelay {
    /// `id` is the one id the client sees; `want_usage` is the client's `include_usage`.
    pub fn new(id: String, created: u64, want_usage: bool) -> Self {
        StreamRelay {
            id,
            created,
            model: String::new(),
            text_sent: String::new(),
            tool_output_sent: false,
            tokens_sent: 0,
            held: Vec::new(),
            usage: None,
            committed: false,
            want_usage,
            transcript: None,
            gate: None,
        }
    }

    /// Keeps a copy of every chunk sent, for [`crate::cache::CachedAnswer::from_chunks`].
    pub fn keep_transcript(&mut self) {
        self.transcript = Some(Vec::new());
    }

    pub fn transcript(&self) -> &[ChatChunk] {
        self.transcript.as_deref().unwrap_or(&[])
    }

    /// True once the first output chunk was released: the response status is sent.
    pub fn committed(&self) -> bool {
        self.committed
    }

    pub fn tokens_sent(&self) -> u64 {
        self.tokens_sent
    }

    pub fn text_sent(&self) -> &str {
        &self.text_sent
    }

    /// Tool-call fragments cannot be continued by another model: a break after them ends the answer.
    pub fn tool_output_sent(&self) -> bool {
        self.tool_output_sent
    }

    pub fn usage(&self) -> Usage {
        self.usage.unwrap_or_default()
    }

    /// The model that answered, as the provider named it.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Forces the commit (an answer that completed without any output).
    pub fn commit(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.committed {
            self.committed = true;
            for h in std::mem::take(&mut self.held) {
                self.emit(h, out);
            }
        }
    }

    fn emit(&mut self, c: ChatChunk, out: &mut Vec<Vec<u8>>) {
        sse_frame(&c, out);
        if let Some(t) = &mut self.transcript {
            t.push(c);
        }
    }

    /// A failed attempt's held chunks never reach the client.
    pub fn attempt_failed(&mut self) {
        self.held.clear();
        self.gate = None;
    }

    /// Holds the next (continuing) chunks back until [`Self::release_gate`] or
    /// [`Self::discard_gate`].
    pub fn hold_continuation(&mut self) {
        self.gate = Some(Gate::default());
    }

    /// The text held behind the gate, if a gate is up.
    pub fn gated_text(&self) -> Option<&str> {
        self.gate.as_ref().map(|g| g.text.as_str())
    }

    /// A new attempt begins: usage is counted per attempt (the driver adds up the
    /// attempts that delivered output).
    pub fn begin_attempt(&mut self) {
        self.usage = None;
    }

    /// The seam checked out: the held chunks go to the client.
    pub fn release_gate(&mut self, out: &mut Vec<Vec<u8>>) {
        if let Some(g) = self.gate.take() {
            if g.usage.is_some() {
                self.usage = g.usage;
            }
            if let Some(m) = g.model {
                self.model = m;
            }
            for c in g.chunks {
                self.deliver(c, out);
            }
        }
    }

    /// The continuation was implausible: nothing of it reaches the client.
    pub fn discard_gate(&mut self) {
        self.gate = None;
    }

    /// One unified chunk from the current attempt. Frames to send are pushed onto `out`.
    pub fn on_chunk(&mut self, mut c: ChatChunk, continuing: bool, out: &mut Vec<Vec<u8>>) {
        let usage = c.usage.take();
        let model = (!c.choices.is_empty() && !c.model.is_empty()).then(|| c.model.clone());
        match &mut self.gate {
            Some(g) => {
                g.usage = usage.or(g.usage);
                g.model = model.or(g.model.take());
            }
            None => {
                self.usage = usage.or(self.usage);
                if let Some(m) = model {
                    self.model = m;
                }
            }
        }
        if c.choices.is_empty() {
            return;
        }
        c.id.clone_from(&self.id);
        if continuing {
            for ch in &mut c.choices {
                ch.delta.role = None;
            }
            if !c.carries_output() && c.finish_reason().is_none() {
                return;
            }
        }
        if let Some(g) = &mut self.gate {
            for ch in &c.choices {
                if let Some(t) = &ch.delta.content {
                    g.text.push_str(t);
                }
            }
            g.chunks.push(c);
            return;
        }
        self.deliver(c, out);
    }

    /// Counts and sends one chunk (or holds it until the first output commits the answer).
    fn deliver(&mut self, c: ChatChunk, out: &mut Vec<Vec<u8>>) {
        for ch in &c.choices {
            if let Some(t) = &ch.delta.content {
                self.text_sent.push_str(t);
            }
            if ch.delta.tool_calls.is_some() {
                self.tool_output_sent = true;
            }
        }
        let output = c.carries_output();
        if output {
            self.tokens_sent += 1;
        }
        if !self.committed {
            if !output && c.finish_reason().is_none() {
                self.held.push(c);
                return;
            }
            self.commit(out);
        }
        self.emit(c, out);
    }

    /// An error of class `StreamBroken` carrying the tokens sent so far.
    pub fn broken(&self, message: impl Into<String>) -> UpstreamError {
        UpstreamError::new(ErrorClass::StreamBroken { tokens_sent: self.tokens_sent }, None, message)
    }

    /// The closing frames of a complete answer: the usage chunk if asked for, an optional
    /// SSE comment (clients ignore comments; Meridian puts the answer's metadata there,
    /// since the headers left before it was known), then `[DONE]`.
    pub fn finish(&mut self, comment: Option<&str>, out: &mut Vec<Vec<u8>>) {
        self.commit(out);
        if self.want_usage {
            let mut c = ChatChunk::new(&self.id, &self.model, self.created);
            c.usage = Some(self.usage());
            sse_frame(&c, out);
        }
        if let Some(text) = comment {
            out.push(format!(": {text}\n\n").into_bytes());
        }
        out.push(b"data: [DONE]\n\n".to_vec());
    }

    /// The in-band error event that ends a stream that could not be completed. No
    /// `[DONE]` follows, so no client mistakes the answer for a finished one.
    pub fn error_frame(e: &UpstreamError) -> Vec<u8> {
        let body = serde_json::json!({"error": {
            "message": format!("the answer was interrupted and could not be completed: {}", e.message),
            "type": "upstream_error", "param": null, "code": "stream_interrupted"}});
        format!("data: {body}\n\n").into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Delta, FinishReason};

    fn chunk(delta: Delta, fin: Option<FinishReason>) -> ChatChunk {
        ChatChunk::new("up-1", "m", 1).with_delta(delta, fin)
    }

    fn text(out: &[Vec<u8>]) -> String {
        out.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }

    #[test]
    fn holds_until_output_then_rewrites_ids() {
        let mut r = StreamRelay::new("client-id".into(), 9, true);
        let mut out = Vec::new();
        r.on_chunk(chunk(Delta { role: Some("assistant".into()), content: Some(String::new()), ..Default::default() }, None), false, &mut out);
        assert!(out.is_empty() && !r.committed(), "role chunk held");
        r.attempt_failed();
        r.on_chunk(chunk(Delta::text("Hi"), None), false, &mut out);
        assert!(r.committed());
        assert_eq!(out.len(), 1, "the failed attempt's held chunk was dropped");
        assert!(text(&out).contains("\"id\":\"client-id\""));
        let mut u = chunk(Delta::default(), None);
        u.choices.clear();
        u.usage = Some(Usage::new(3, 4));
        r.on_chunk(u, false, &mut out);
        assert_eq!(out.len(), 1, "usage-only chunks are not forwarded");
        r.finish(Some("cost=1"), &mut out);
        let t = text(&out);
        assert!(t.contains("\"completion_tokens\":4") && t.contains(": cost=1\n\n") && t.ends_with("data: [DONE]\n\n"));
        assert_eq!(r.text_sent(), "Hi");
        assert_eq!(r.tokens_sent(), 1);
    }

    #[test]
    fn continuation_drops_role_and_empty_chunks() {
        let mut r = StreamRelay::new("id".into(), 0, false);
        let mut out = Vec::new();
        r.on_chunk(chunk(Delta::text("a"), None), false, &mut out);
        r.on_chunk(chunk(Delta { role: Some("assistant".into()), content: Some(String::new()), ..Default::default() }, None), true, &mut out);
        assert_eq!(out.len(), 1);
        r.on_chunk(chunk(Delta { role: Some("assistant".into()), content: Some("b".into()), ..Default::default() }, None), true, &mut out);
        assert!(!text(&out[1..]).contains("role"));
        r.finish(None, &mut out);
        assert!(!text(&out).contains("usage"), "no usage chunk unless asked");
    }

    #[test]
    fn a_gated_continuation_is_released_or_discarded_whole() {
        let mut r = StreamRelay::new("id".into(), 0, false);
        let mut out = Vec::new();
        r.on_chunk(chunk(Delta::text("Hello"), None), false, &mut out);
        r.hold_continuation();
        r.on_chunk(chunk(Delta::text(" wor"), None), true, &mut out);
        r.on_chunk(chunk(Delta::text("ld"), Some(FinishReason::Stop)), true, &mut out);
        assert_eq!(out.len(), 1, "held back");
        assert_eq!(r.gated_text(), Some(" world"));
        assert_eq!(r.text_sent(), "Hello");
        r.release_gate(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(r.text_sent(), "Hello world");
        assert_eq!(r.gated_text(), None);
        r.hold_continuation();
        let mut u = chunk(Delta::text("Hello world"), None);
        u.usage = Some(Usage::new(50, 7));
        u.model = "other".into();
        r.on_chunk(u, true, &mut out);
        r.discard_gate();
        assert_eq!((out.len(), r.text_sent(), r.tokens_sent()), (3, "Hello world", 3));
        assert_eq!((r.usage(), r.model()), (Usage::default(), "m"), "a discarded continuation's usage and model are not the answer's");
    }

    #[test]
    fn error_frame_is_an_openai_error_event() {
        let f = StreamRelay::error_frame(&UpstreamError::new(ErrorClass::Transient, None, "boom"));
        let s = String::from_utf8(f).unwrap();
        assert!(s.starts_with("data: {\"error\":") && s.contains("stream_interrupted") && !s.contains("[DONE]"));
    }
}
