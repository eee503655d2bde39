//! Deterministic answers. The full answer depends only on the first user message, so a
//! continuation request (the partial answer as the last assistant turn) can be answered
//! with exactly the rest, and a test can check the stitched answer word for word.

use serde_json::Value;

const WORDS: &[&str] = &["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"];

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// The answer's tokens, each with its leading space (except the first).
pub fn answer_tokens(question: &str, n: usize) -> Vec<String> {
    let mut h = fnv(question);
    (0..n)
        .map(|i| {
            h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let w = WORDS[(h >> 33) as usize % WORDS.len()];
            if i == 0 {
                format!("Mock{w}")
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

/// What the conversation asks for: the question, and any partial answer to continue.
pub struct Ask {
    pub question: String,
    pub prefill: String,
    pub prompt_tokens: u64,
    /// The last turn is a tool result: answer in text.
    pub after_tool: bool,
}

/// `turns` are (role, text) in order, system excluded.
pub fn ask(turns: &[(String, String)]) -> Ask {
    let question = turns.iter().find(|(r, _)| r == "user").map(|(_, t)| t.clone()).unwrap_or_default();
    let prompt_tokens = turns.iter().map(|(_, t)| t.split_whitespace().count() as u64 + 1).sum::<u64>().max(1);
    let after_tool = turns.last().is_some_and(|(r, _)| r == "tool");
    // Prefill: the last turn is the assistant's partial answer. Continuation by
    // instruction: an assistant turn followed by a user "continue" turn.
    let prefill = match turns {
        [.., (r, t)] if r == "assistant" => t.clone(),
        [.., (r1, t), (r2, u)] if r1 == "assistant" && r2 == "user" && u.to_ascii_lowercase().starts_with("continue") => t.clone(),
        _ => String::new(),
    };
    Ask { question, prefill, prompt_tokens, after_tool }
}

/// The tokens still to send: the answer minus the prefix already given.
pub fn remaining_tokens(ask: &Ask, n: usize) -> Vec<String> {
    let all = answer_tokens(&ask.question, n);
    if ask.prefill.is_empty() {
        return all;
    }
    let mut acc = String::new();
    for (i, t) in all.iter().enumerate() {
        if acc == ask.prefill {
            return all[i..].to_vec();
        }
        acc.push_str(t);
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_gives_the_rest() {
        let full = answer_tokens("q", 6);
        let partial: String = full[..2].concat();
        let a = ask(&[("user".into(), "q".into()), ("assistant".into(), partial)]);
        assert_eq!(remaining_tokens(&a, 6), full[2..].to_vec());
    }
}
