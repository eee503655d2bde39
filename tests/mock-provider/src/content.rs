//! Deterministic answers. The full answer depends only on the first user message. How a
//! continuation request is answered follows real models, not the gateway's hopes: asked
//! with an instruction turn ("continue where you stopped") a model starts over; given a
//! prefill (the partial answer as the final assistant turn) only a model that accepts
//! prefills carries on — OpenAI and Gemini start over, Anthropic's newer models refuse
//! (the handler's 400). The `cooperative` directive restores the old, too-kind mock that
//! gives exactly the rest either way.

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

/// How a request asks to continue a partial answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuing {
    No,
    /// The partial answer is the final assistant turn.
    Prefill,
    /// An assistant turn followed by a user "continue…" turn.
    Instruction,
}

/// What the conversation asks for: the question, and any partial answer to continue.
pub struct Ask {
    pub question: String,
    pub prefill: String,
    pub continuing: Continuing,
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
    let (prefill, continuing) = match turns {
        [.., (r, t)] if r == "assistant" => (t.clone(), Continuing::Prefill),
        [.., (r1, t), (r2, u)] if r1 == "assistant" && r2 == "user" && u.to_ascii_lowercase().starts_with("continue") => (t.clone(), Continuing::Instruction),
        _ => (String::new(), Continuing::No),
    };
    Ask { question, prefill, continuing, prompt_tokens, after_tool }
}

/// The tokens to send. `carries_on`: this model continues the partial answer it was
/// given (a prefill-capable model given a prefill, or the `cooperative` directive);
/// otherwise it answers from the beginning, as real models do.
pub fn remaining_tokens(ask: &Ask, n: usize, carries_on: bool) -> Vec<String> {
    let all = answer_tokens(&ask.question, n);
    if ask.prefill.is_empty() || !carries_on {
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
    fn only_a_model_that_carries_on_gives_the_rest() {
        let full = answer_tokens("q", 6);
        let partial: String = full[..2].concat();
        let a = ask(&[("user".into(), "q".into()), ("assistant".into(), partial.clone())]);
        assert_eq!(a.continuing, Continuing::Prefill);
        assert_eq!(remaining_tokens(&a, 6, true), full[2..].to_vec());
        assert_eq!(remaining_tokens(&a, 6, false), full, "starts over");
        let i = ask(&[("user".into(), "q".into()), ("assistant".into(), partial), ("user".into(), "Continue your previous answer".into())]);
        assert_eq!(i.continuing, Continuing::Instruction);
        assert_eq!(remaining_tokens(&i, 6, false), full);
    }
}
