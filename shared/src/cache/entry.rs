//! A cached answer, stored once and replayed as JSON or as an SSE stream.

use serde::{Deserialize, Serialize};

use crate::api::{ChatChunk, ChatResponse, Delta, FunctionCallDelta, ToolCallDelta};
use crate::relay::StreamRelay;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CachedAnswer {
    pub response: ChatResponse,
    /// Unix seconds when stored.
    pub stored_at: u64,
}

impl CachedAnswer {
    /// Rebuilds a complete response from a streamed answer's chunks.
    pub fn from_chunks(chunks: &[ChatChunk], usage: crate::api::Usage, stored_at: u64) -> Option<CachedAnswer> {
        let first = chunks.first()?;
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut calls: Vec<crate::api::ToolCall> = Vec::new();
        let mut finish = None;
        for c in chunks {
            for ch in &c.choices {
                text.push_str(ch.delta.content.as_deref().unwrap_or(""));
                reasoning.push_str(ch.delta.reasoning_content.as_deref().unwrap_or(""));
                finish = finish.or(ch.finish_reason);
                for t in ch.delta.tool_calls.iter().flatten() {
                    let i = t.index as usize;
                    while calls.len() <= i {
                        calls.push(crate::api::ToolCall { id: String::new(), kind: "function".into(), function: crate::api::FunctionCall { name: String::new(), arguments: String::new() } });
                    }
                    if let Some(id) = &t.id {
                        calls[i].id.clone_from(id);
                    }
                    if let Some(f) = &t.function {
                        calls[i].function.name.push_str(f.name.as_deref().unwrap_or(""));
                        calls[i].function.arguments.push_str(f.arguments.as_deref().unwrap_or(""));
                    }
                }
            }
        }
        finish?;
        let response = ChatResponse {
            id: first.id.clone(),
            object: "chat.completion".into(),
            created: first.created,
            model: chunks.iter().rev().map(|c| c.model.as_str()).find(|m| !m.is_empty()).unwrap_or("").to_string(),
            choices: vec![crate::api::Choice {
                index: 0,
                message: crate::api::ResponseMessage {
                    role: "assistant".into(),
                    content: if text.is_empty() && !calls.is_empty() { None } else { Some(text) },
                    reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                    tool_calls: (!calls.is_empty()).then_some(calls),
                    refusal: None,
                },
                finish_reason: finish,
                logprobs: None,
            }],
            usage: Some(usage),
            system_fingerprint: None,
        };
        Some(CachedAnswer { response, stored_at })
    }

    /// The answer as SSE frames, ending in `[DONE]`.
    pub fn to_sse(&self, id: &str, want_usage: bool) -> Vec<Vec<u8>> {
        let r = &self.response;
        let mut relay = StreamRelay::new(id.to_string(), r.created, want_usage);
        let mut out = Vec::new();
        let base = ChatChunk::new(id, &r.model, r.created);
        let Some(choice) = r.choices.first() else { return out };
        let m = &choice.message;
        relay.on_chunk(base.clone().with_delta(Delta { role: Some("assistant".into()), content: Some(String::new()), ..Default::default() }, None), false, &mut out);
        if let Some(rc) = &m.reasoning_content {
            relay.on_chunk(base.clone().with_delta(Delta { reasoning_content: Some(rc.clone()), ..Default::default() }, None), false, &mut out);
        }
        if let Some(t) = m.content.as_ref().filter(|t| !t.is_empty()) {
            relay.on_chunk(base.clone().with_delta(Delta::text(t.clone()), None), false, &mut out);
        }
        for (i, tc) in m.tool_calls.iter().flatten().enumerate() {
            let d = ToolCallDelta {
                index: i as u32,
                id: Some(tc.id.clone()),
                kind: Some("function".into()),
                function: Some(FunctionCallDelta { name: Some(tc.function.name.clone()), arguments: Some(tc.function.arguments.clone()) }),
            };
            relay.on_chunk(base.clone().with_delta(Delta { tool_calls: Some(vec![d]), ..Default::default() }, None), false, &mut out);
        }
        let mut fin = base.with_delta(Delta::default(), choice.finish_reason);
        fin.usage = r.usage;
        relay.on_chunk(fin, false, &mut out);
        relay.finish(None, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FinishReason, Usage};

    #[test]
    fn chunks_roundtrip_through_the_cache() {
        let c = |d: Delta, f| ChatChunk::new("id", "m", 5).with_delta(d, f);
        let chunks = vec![
            c(Delta { role: Some("assistant".into()), content: Some(String::new()), ..Default::default() }, None),
            c(Delta::text("Hel"), None),
            c(Delta::text("lo"), None),
            c(Delta::default(), Some(FinishReason::Stop)),
        ];
        let a = CachedAnswer::from_chunks(&chunks, Usage::new(1, 2), 100).unwrap();
        assert_eq!(a.response.choices[0].message.content.as_deref(), Some("Hello"));
        let sse: String = a.to_sse("new-id", true).iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        assert!(sse.contains("\"content\":\"Hello\"") && sse.contains("\"id\":\"new-id\"") && sse.contains("\"completion_tokens\":2"));
        assert!(sse.ends_with("data: [DONE]\n\n"));
        assert!(CachedAnswer::from_chunks(&chunks[..3], Usage::default(), 0).is_none(), "an unfinished answer is never cached");
    }
}
