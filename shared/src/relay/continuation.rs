//! Builds the request that continues an answer which broke after tokens reached the
//! client. Providers that accept a trailing assistant turn ("prefill") get the partial
//! answer as that turn; others get it plus an instruction to carry on.

use crate::api::{ChatRequest, Message, Role};
use crate::providers::ProviderKind;

pub const CONTINUE_INSTRUCTION: &str = "Continue your previous answer exactly where it stopped. Do not repeat any of it.";

pub fn continuation(original: &ChatRequest, partial: &str, target: ProviderKind) -> ChatRequest {
    let mut req = original.clone();
    // Anthropic rejects a final assistant turn that ends in white space.
    let partial = if target == ProviderKind::Anthropic { partial.trim_end() } else { partial };
    req.messages.push(Message::text(Role::Assistant, partial));
    if !target.supports_prefill() {
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
        let a = continuation(&req, "partial", ProviderKind::Anthropic);
        assert_eq!(a.messages.last().unwrap().text_content(), "partial");
        let o = continuation(&req, "partial", ProviderKind::Openai);
        assert_eq!(o.messages.len(), 3);
        assert_eq!(o.messages.last().unwrap().text_content(), CONTINUE_INSTRUCTION);
    }
}
