//! [`AttemptStream`]: one upstream streamed attempt, bytes in, relay frames out.

use super::StreamRelay;
use crate::failover::{ErrorClass, TimeoutKind, UpstreamError};
use crate::providers::{ProviderKind, StreamDecoder, StreamEvent};

/// What the host does after feeding an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Keep reading, with the timer [`AttemptStream::timer`] names.
    Continue,
    /// The provider finished the answer.
    Complete,
    /// The attempt failed; report it to the failover engine.
    Failed(UpstreamError),
}

#[derive(Debug)]
pub struct AttemptStream {
    decoder: StreamDecoder,
    events: Vec<StreamEvent>,
    continuing: bool,
    got_output: bool,
    finished: bool,
}

impl AttemptStream {
    /// `continuing`: this attempt continues an answer that already reached the client.
    pub fn new(kind: ProviderKind, relay_id: &str, created: u64, continuing: bool) -> Self {
        AttemptStream { decoder: StreamDecoder::new(kind, relay_id, created), events: Vec::new(), continuing, got_output: false, finished: false }
    }

    /// Whether this attempt has produced output (the deployment is evidently working).
    pub fn got_output(&self) -> bool {
        self.got_output
    }

    /// Whether the provider has sent its finish reason.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The timer for the next read: first token until output arrives, then idle.
    pub fn timer(&self) -> TimeoutKind {
        if self.got_output { TimeoutKind::Idle } else { TimeoutKind::FirstToken }
    }

    fn drain(&mut self, relay: &mut StreamRelay, out: &mut Vec<Vec<u8>>) -> Option<Step> {
        for ev in std::mem::take(&mut self.events) {
            match ev {
                StreamEvent::Chunk(c) => {
                    self.finished |= c.finish_reason().is_some();
                    self.got_output |= c.carries_output();
                    relay.on_chunk(c, self.continuing, out);
                }
                StreamEvent::Done => return Some(Step::Complete),
                StreamEvent::Error(mut e) => {
                    e.class = ErrorClass::StreamBroken { tokens_sent: relay.tokens_sent() };
                    return Some(Step::Failed(e));
                }
            }
        }
        None
    }

    pub fn on_bytes(&mut self, bytes: &[u8], relay: &mut StreamRelay, out: &mut Vec<Vec<u8>>) -> Step {
        let fed = self.decoder.feed(bytes, &mut self.events);
        // Events decoded before a malformed frame still reach the client.
        if let Some(step) = self.drain(relay, out) {
            return step;
        }
        match fed {
            Ok(()) => Step::Continue,
            Err(e) => Step::Failed(relay.broken(e.message)),
        }
    }

    /// End of body. Complete only with a terminator, or a finish reason without one
    /// (finalised promptly rather than waiting); otherwise the stream was cut.
    pub fn on_eof(&mut self, relay: &mut StreamRelay, out: &mut Vec<Vec<u8>>) -> Step {
        self.decoder.finish(&mut self.events);
        if let Some(step) = self.drain(relay, out) {
            return step;
        }
        if self.finished { Step::Complete } else { Step::Failed(relay.broken("stream ended before the provider finished the answer")) }
    }

    /// The connection failed mid-body.
    pub fn on_transport_error(&mut self, relay: &StreamRelay, message: &str) -> Step {
        if self.finished { Step::Complete } else { Step::Failed(relay.broken(format!("stream cut: {message}"))) }
    }

    /// The current timer fired after `waited_ms`. Silence before this attempt's first
    /// output is a timeout (that deployment is not asked again), even when an earlier
    /// attempt's output already reached the client.
    pub fn on_timeout(&self, relay: &StreamRelay, waited_ms: u64) -> Step {
        if self.finished {
            Step::Complete
        } else if self.got_output {
            Step::Failed(relay.broken(format!("stream stalled: no chunk within {waited_ms} ms")))
        } else {
            let kind = self.timer();
            Step::Failed(UpstreamError::new(ErrorClass::Timeout(kind), None, format!("no {} within {waited_ms} ms", kind.as_str().replace('_', " "))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8]) -> (Step, StreamRelay, Vec<Vec<u8>>) {
        let mut relay = StreamRelay::new("c".into(), 0, false);
        let mut a = AttemptStream::new(ProviderKind::Openai, "c", 0, false);
        let mut out = Vec::new();
        let s = a.on_bytes(bytes, &mut relay, &mut out);
        if s != Step::Continue {
            return (s, relay, out);
        }
        let s = a.on_eof(&mut relay, &mut out);
        (s, relay, out)
    }

    const ROLE: &str = "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
    const TOK: &str = "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n";
    const FIN: &str = "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";

    #[test]
    fn complete_with_done() {
        let (s, r, out) = run(format!("{ROLE}{TOK}{FIN}data: [DONE]\n\n").as_bytes());
        assert_eq!(s, Step::Complete);
        assert_eq!(out.len(), 3);
        assert_eq!(r.text_sent(), "hi");
    }

    #[test]
    fn finish_without_done_is_complete_but_a_cut_is_not() {
        assert_eq!(run(format!("{ROLE}{TOK}{FIN}").as_bytes()).0, Step::Complete);
        let (s, _, _) = run(format!("{ROLE}{TOK}").as_bytes());
        assert!(matches!(s, Step::Failed(e) if e.class == ErrorClass::StreamBroken { tokens_sent: 1 }));
        let (s, _, out) = run(ROLE.as_bytes());
        assert!(matches!(s, Step::Failed(e) if e.class == ErrorClass::StreamBroken { tokens_sent: 0 }));
        assert!(out.is_empty(), "nothing committed");
    }

    #[test]
    fn timers_and_timeouts() {
        let mut relay = StreamRelay::new("c".into(), 0, false);
        let mut a = AttemptStream::new(ProviderKind::Openai, "c", 0, false);
        assert_eq!(a.timer(), TimeoutKind::FirstToken);
        assert!(matches!(a.on_timeout(&relay, 5), Step::Failed(e) if e.class == ErrorClass::Timeout(TimeoutKind::FirstToken)));
        let mut out = Vec::new();
        a.on_bytes(format!("{ROLE}{TOK}").as_bytes(), &mut relay, &mut out);
        assert_eq!(a.timer(), TimeoutKind::Idle);
        assert!(matches!(a.on_timeout(&relay, 5), Step::Failed(e) if e.class == ErrorClass::StreamBroken { tokens_sent: 1 }));
        a.on_bytes(FIN.as_bytes(), &mut relay, &mut out);
        assert_eq!(a.on_timeout(&relay, 5), Step::Complete, "finish seen, terminator late");
    }

    #[test]
    fn malformed_and_in_band_errors_break_the_attempt() {
        let (s, _, _) = run(format!("{ROLE}{TOK}data: {{oops\n\n").as_bytes());
        assert!(matches!(s, Step::Failed(e) if e.class == ErrorClass::StreamBroken { tokens_sent: 1 }));
        let (s, _, _) = run(format!("{ROLE}data: {{\"error\":{{\"message\":\"x\"}}}}\n\n").as_bytes());
        assert!(matches!(s, Step::Failed(e) if e.message == "x"));
    }
}
