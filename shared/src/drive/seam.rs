//! The seam check: is a continuation plausibly the rest of the answer the client already
//! has, or did the target start over, repeat itself, or echo the end of the partial?
//! A continuation is held back from the client until this says yes; a "no" discards it.
//!
//! Real models asked to continue often restart from the beginning or repeat the last
//! sentence. These rules catch that; what they let through is text that neither starts
//! like the answer, nor repeats six words in a row of it, nor begins with its last words.

/// Judge once the continuation holds this many characters (or this many words), or
/// when it ends, whichever comes first.
pub const DECIDE_AFTER_CHARS: usize = 64;
pub const DECIDE_AFTER_WORDS: usize = 12;
/// A run of this many words already sent is a repeat.
const REPEAT_RUN_WORDS: usize = 6;
/// The continuation's first words that are compared with what was sent.
const HEAD_WORDS: usize = 24;
/// The beginning of the answer compared with the beginning of the continuation.
const RESTART_CHARS: usize = 24;
/// The shortest echo of the partial's last words that counts.
const ECHO_MIN_WORDS: usize = 3;
const ECHO_MAX_WORDS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough of the continuation yet.
    Undecided,
    Accept,
    /// Discard it; the reason completes "the continuation was discarded: …".
    Reject(&'static str),
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()).filter(|w| !w.is_empty()).collect()
}

/// `sent`: what the client received; `continuation`: what the target produced so far;
/// `complete`: the target finished (no more is coming).
pub fn judge(sent: &str, continuation: &str, complete: bool) -> Verdict {
    let cont = words(continuation);
    if !complete && continuation.chars().count() < DECIDE_AFTER_CHARS && cont.len() < DECIDE_AFTER_WORDS {
        return Verdict::Undecided;
    }
    if cont.is_empty() {
        return Verdict::Accept;
    }
    // Started over: it begins as the answer began.
    let start: String = sent.trim_start().chars().take(RESTART_CHARS).collect();
    if !start.is_empty() && continuation.trim_start().starts_with(&start) {
        return Verdict::Reject("it restarts the answer");
    }
    let sent_words = words(sent);
    let head = &cont[..cont.len().min(HEAD_WORDS)];
    // A long stretch of what was sent, anywhere near the seam.
    if sent_words.len() >= REPEAT_RUN_WORDS && head.len() >= REPEAT_RUN_WORDS {
        let repeated = head.windows(REPEAT_RUN_WORDS).any(|run| sent_words.windows(REPEAT_RUN_WORDS).any(|w| w == run));
        if repeated {
            return Verdict::Reject("it repeats what was already sent");
        }
    }
    // An echo of the partial's last words.
    let longest = ECHO_MAX_WORDS.min(sent_words.len()).min(head.len());
    if (ECHO_MIN_WORDS..=longest).any(|k| sent_words[sent_words.len() - k..] == head[..k]) {
        return Verdict::Reject("it repeats the end of what was sent");
    }
    Verdict::Accept
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "The quick brown fox jumps over the lazy dog while the farmer watches from the porch and drinks his coffee slowly in the morning sun.";

    fn split(at_words: usize) -> (String, String) {
        let w: Vec<&str> = FULL.split(' ').collect();
        (w[..at_words].join(" "), format!(" {}", w[at_words..].join(" ")))
    }

    #[test]
    fn the_exact_rest_is_accepted() {
        for at in [1, 3, 9, 15] {
            let (sent, rest) = split(at);
            assert_eq!(judge(&sent, &rest, true), Verdict::Accept, "split at {at}");
        }
    }

    #[test]
    fn waits_for_enough_text() {
        let (sent, rest) = split(9);
        assert_eq!(judge(&sent, &rest[..20], false), Verdict::Undecided);
        assert_eq!(judge(&sent, &rest, false), Verdict::Accept);
        assert_eq!(judge(&sent, "", true), Verdict::Accept, "nothing more to say");
    }

    #[test]
    fn a_restart_is_rejected() {
        for at in [1, 3, 9] {
            let (sent, _) = split(at);
            assert_eq!(judge(&sent, FULL, true), Verdict::Reject("it restarts the answer"), "split at {at}");
        }
        assert_eq!(judge("Mockalpha", "Mockalpha bravo charlie", true), Verdict::Reject("it restarts the answer"));
    }

    #[test]
    fn a_repeat_or_an_echo_is_rejected() {
        let (sent, _) = split(15);
        let repeat = " As I said, jumps over the lazy dog while the farmer keeps on watching.";
        assert_eq!(judge(&sent, repeat, true), Verdict::Reject("it repeats what was already sent"));
        let echo = " watches from the porch and drinks his coffee slowly in the morning sun.";
        assert_eq!(judge(&sent, echo, true), Verdict::Reject("it repeats the end of what was sent"));
    }

    #[test]
    fn common_words_at_the_seam_are_not_an_echo() {
        assert_eq!(judge("It was in the", " the garden, by the old well, that we found the key to all of it.", true), Verdict::Accept);
        assert_eq!(judge("The", " cat sat on the mat and looked out of the window for a long while.", true), Verdict::Accept);
    }
}
