//! The request that continues an answer which broke after output reached the client.
//! With a prefill the partial answer is the final assistant turn and the target carries
//! on from it (the adapter marks it where a provider needs that: Mistral's and
//! DeepSeek's `prefix: true`, vLLM's `continue_final_message`). The instruction form adds
//! a user turn asking to continue — no model promises to honour it, so its answers are
//! only ever used behind the seam check and marked.

use serde::{Deserialize, Serialize};

use crate::api::{ChatRequest, Message, Role};
use crate::providers::ProviderKind;

pub const CONTINUE_INSTRUCTION: &str = "Continue your previous answer exactly where it stopped. Do not repeat any of it.";

/// How a continuation was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Continuation {
    Prefill,
    Instruction,
}

impl Continuation {
    pub fn as_str(self) -> &'static str {
        match self {
            Continuation::Prefill => "prefill",
            Continuation::Instruction => "instruction",
        }
    }
}

pub fn continuation(original: &ChatRequest, partial: &str, target: ProviderKind, how: Continuation) -> ChatRequest {
    let mut req = original.clone();
    // Anthropic rejects a final assistant turn that ends in white space.
    let partial = if target == ProviderKind::Anthropic && how == Continuation::Prefill { partial.trim_end() } else { partial };
    req.messages.push(Message::text(Role::Assistant, partial));
    if how == Continuation::Instruction {
        req.messages.push(Message::text(Role::User, CONTINUE_INSTRUCTION));
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_or_instruction() {
        let req = ChatRequest { messages: vec![Message::text(Role::User, "q")], ..Default::default() };
        let a = continuation(&req, "partial ", ProviderKind::Anthropic, Continuation::Prefill);
        assert_eq!(a.messages.last().unwrap().text_content(), "partial");
        assert_eq!(a.messages.last().unwrap().role, Role::Assistant);
        let o = continuation(&req, "partial", ProviderKind::Openai, Continuation::Instruction);
        assert_eq!(o.messages.len(), 3);
        assert_eq!(o.messages.last().unwrap().text_content(), CONTINUE_INSTRUCTION);
    }
}
