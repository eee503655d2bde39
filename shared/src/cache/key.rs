//! The exact-cache key: SHA-256 over a canonical JSON of the tenant and every request
//! field that can change the answer. `stream`, `stream_options` and `user` do not change
//! the answer and are left out, so a streamed and a plain request share an entry.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::api::ChatRequest;

/// Serialises with object keys sorted, at every depth.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Hex key, prefixed by the tenant so no two tenants can ever share an entry.
pub fn cache_key(tenant: &str, req: &ChatRequest) -> String {
    let mut v = serde_json::to_value(req).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        for k in ["stream", "stream_options", "user"] {
            m.remove(k);
        }
        // Both spellings of the output cap mean the same.
        if let Some(cap) = m.remove("max_completion_tokens") {
            m.insert("max_tokens".into(), cap);
        }
    }
    let mut wrapped = Map::new();
    wrapped.insert("tenant".into(), Value::String(tenant.to_string()));
    wrapped.insert("request".into(), v);
    let mut s = String::new();
    canonical(&Value::Object(wrapped), &mut s);
    format!("{}:{}", tenant, hex::encode(Sha256::digest(s.as_bytes())))
}

/// Requests whose answer may be reused: a single choice, and no tools unless the tenant
/// allows caching requests that offer tools (a tool call may have side effects).
pub fn is_cacheable(req: &ChatRequest, allow_tools: bool) -> bool {
    req.n.unwrap_or(1) == 1 && (allow_tools || req.tools.as_ref().is_none_or(Vec::is_empty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Message, Role};

    fn req() -> ChatRequest {
        ChatRequest { model: "m".into(), messages: vec![Message::text(Role::User, "hi")], ..Default::default() }
    }

    #[test]
    fn every_answer_changing_field_changes_the_key() {
        let base = cache_key("t1", &req());
        assert_ne!(base, cache_key("t2", &req()), "tenant");
        type Change = Box<dyn Fn(&mut ChatRequest)>;
        let variants: Vec<Change> = vec![
            Box::new(|r| r.model = "m2".into()),
            Box::new(|r| r.messages[0] = Message::text(Role::User, "hi!")),
            Box::new(|r| r.temperature = Some(0.5)),
            Box::new(|r| r.top_p = Some(0.5)),
            Box::new(|r| r.seed = Some(1)),
            Box::new(|r| r.max_tokens = Some(5)),
            Box::new(|r| r.stop = Some(crate::api::Stop::One("x".into()))),
            Box::new(|r| r.response_format = Some(serde_json::json!({"type": "json_object"}))),
            Box::new(|r| r.tool_choice = Some(serde_json::json!("auto"))),
            Box::new(|r| r.presence_penalty = Some(1.0)),
            Box::new(|r| {
                r.extra.insert("logit_bias".into(), serde_json::json!({"1": 2}));
            }),
        ];
        for (i, f) in variants.iter().enumerate() {
            let mut r = req();
            f(&mut r);
            assert_ne!(cache_key("t1", &r), base, "variant {i}");
        }
    }

    #[test]
    fn stream_and_spelling_do_not_change_the_key() {
        let mut a = req();
        a.stream = Some(true);
        a.user = Some("u".into());
        a.max_completion_tokens = Some(9);
        let mut b = req();
        b.max_tokens = Some(9);
        assert_eq!(cache_key("t", &a), cache_key("t", &b));
        assert!(cache_key("t", &a).starts_with("t:"));
    }
}
