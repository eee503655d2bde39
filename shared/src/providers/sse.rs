//! Incremental Server-Sent Events framing (WHATWG `text/event-stream`).
//!
//! Feed byte slices as they arrive, in any split; get whole events out. Accepts
//! `\n`, `\r\n` and `\r` line endings (Gemini frames with CRLF), comment lines
//! (`: keep-alive`), multi-line `data:` and a missing space after the colon.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an SSE event exceeded {0} bytes")]
    EventTooLarge(usize),
    #[error("SSE stream is not valid UTF-8")]
    InvalidUtf8,
}

#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    max_event_bytes: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(8 * 1024 * 1024)
    }
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder { buf: Vec::new(), event: None, data: String::new(), has_data: false, max_event_bytes }
    }

    /// Appends `bytes` and pushes every event completed by them onto `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else { break };
            let consumed = if rest[pos] == b'\r' {
                match rest.get(pos + 1) {
                    None => break, // a '\n' may still follow in the next slice
                    Some(b'\n') => pos + 2,
                    Some(_) => pos + 1,
                }
            } else {
                pos + 1
            };
            let line = std::str::from_utf8(&rest[..pos]).map_err(|_| SseError::InvalidUtf8)?.to_owned();
            start += consumed;
            self.line(&line, out);
        }
        self.buf.drain(..start);
        if self.buf.len() + self.data.len() > self.max_event_bytes {
            return Err(SseError::EventTooLarge(self.max_event_bytes));
        }
        Ok(())
    }

    /// True when bytes of an unfinished event are buffered (the stream was cut mid-frame).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.has_data
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data) });
            }
            self.event = None;
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], split: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in input.chunks(split.max(1)) {
            d.feed(chunk, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn any_split_gives_same_events() {
        let input = b"event: a\r\ndata: {\"x\":1}\r\n\r\n: keep-alive\n\ndata:two\ndata: lines\n\ndata: [DONE]\r\r\n";
        let whole = decode_split(input, input.len());
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0], SseEvent { event: Some("a".into()), data: "{\"x\":1}".into() });
        assert_eq!(whole[1].data, "two\nlines");
        assert_eq!(whole[2].data, "[DONE]");
        for split in 1..input.len() {
            assert_eq!(decode_split(input, split), whole, "split {split}");
        }
    }

    #[test]
    fn partial_frame_is_reported() {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        d.feed(b"data: {\"half\":", &mut out).unwrap();
        assert!(out.is_empty());
        assert!(d.has_partial());
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut d = SseDecoder::new(16);
        let mut out = Vec::new();
        assert_eq!(d.feed(&[b'x'; 64], &mut out), Err(SseError::EventTooLarge(16)));
    }
}
