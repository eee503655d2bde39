//! The edge Worker in real workerd, in front of the mock provider and two regional
//! backends (EU, US), over real HTTP.

use meridian_e2e::*;
use serde_json::{json, Value};

const MODELS: &str = r#"
deployments:
  - { name: primary, provider: openai, model: "PRIMARY" }
  - { name: backup, provider: gemini, model: gemini-backup }
  - { name: small, provider: openai, model: gpt-small }
models:
  - { name: m, deployments: [primary, backup] }
  - { name: small, deployments: [small] }
"#;

async fn stack(primary: &str) -> EdgeStack {
    EdgeStack::start(EdgeSetup::models(&MODELS.replace("PRIMARY", primary))).await
}

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "OpenAI envelope: {v}");
    (status, v)
}

#[tokio::test]
async fn chat_through_the_worker_with_failover() {
    let s = stack("p@status=503").await;
    let r = s.chat(&s.key_eu, json!({"model": "m", "messages": user("hello")})).await;
    let status = r.status();
    let h = r.headers().clone();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "x-meridian-deployment"), "backup");
    assert_eq!(header(&h, "x-meridian-attempts"), "2");
    assert_eq!(body["model"], "gemini-backup");
    assert_eq!(body["choices"][0]["message"]["content"], mock_answer_at(&s.mock.url, "hello").await.as_str());
    assert!(!header(&h, "x-meridian-overhead-ms").is_empty());
}
