//! Real recorded provider streams, replayed byte for byte by the mock, through the
//! gateway: the client must get OpenAI chunks carrying exactly the recorded answer.

use meridian_e2e::*;
use serde_json::json;

#[tokio::test]
async fn recorded_provider_streams_come_out_as_openai_chunks() {
    let cases = [
        ("openai", "openai/chat_stream.sse", "I'm unable to provide real-time weather updates.", "gpt-4o-2024-08-06"),
        ("anthropic", "anthropic/message_stream.sse", "The weather in San Francisco, CA is currently:", "claude-haiku-4-5-20251001"),
        ("gemini", "gemini/stream_generate_content.sse", "The capital of Wyoming is **Cheyenne**.\n", "gemini-2.0-flash"),
        ("deepseek", "deepseek/chat_stream.sse", "", "deepseek-reasoner"),
        ("mistral", "mistral/chat_stream.sse", "", "magistral-medium-latest"),
    ];
    let mut yaml = String::from("deployments:\n");
    for (provider, file, _, _) in &cases {
        yaml.push_str(&format!("  - {{ name: {provider}, provider: {provider}, model: \"rec@replay={}\" }}\n", fixture(file).display()));
    }
    yaml.push_str("models:\n");
    for (provider, ..) in &cases {
        yaml.push_str(&format!("  - {{ name: {provider}, deployments: [{provider}] }}\n"));
    }
    let s = Stack::start(Setup::models(&yaml)).await;
    for (provider, _, starts, model) in cases {
        let sse = read_sse(s.chat(json!({"model": provider, "stream": true, "stream_options": {"include_usage": true}, "messages": user("hi")})).await).await;
        assert_eq!(sse.status, 200, "{provider}");
        assert!(sse.done && sse.error().is_none(), "{provider}: {}", sse.raw);
        assert!(sse.text().starts_with(starts) && !sse.text().is_empty(), "{provider}: {:?}", sse.text());
        assert!(sse.events.iter().all(|e| e["model"] == model), "{provider}: model is the provider's");
        assert!(sse.usage().unwrap()["completion_tokens"].as_u64().unwrap() > 0, "{provider}");
        assert!(sse.finish_reason().is_some());
        assert!(sse.raw.contains(": x-meridian-cost-usd="), "{provider}: cost reported in an SSE comment");
    }
}

#[tokio::test]
async fn recorded_provider_responses_come_out_in_openai_shape() {
    let cases = [
        ("openai", "openai/chat_completion.json", "gpt-4o-2024-08-06", 37),
        ("anthropic", "anthropic/message.json", "claude-haiku-4-5-20251001", 0),
        ("gemini", "gemini/generate_content.json", "gemini-2.0-flash", 22),
        ("deepseek", "deepseek/chat_completion.json", "deepseek-reasoner", 0),
    ];
    let mut yaml = String::from("deployments:\n");
    for (provider, file, ..) in &cases {
        yaml.push_str(&format!("  - {{ name: {provider}, provider: {provider}, model: \"rec@replay={}\" }}\n", fixture(file).display()));
    }
    yaml.push_str("models:\n");
    for (provider, ..) in &cases {
        yaml.push_str(&format!("  - {{ name: {provider}, deployments: [{provider}] }}\n"));
    }
    let s = Stack::start(Setup::models(&yaml)).await;
    for (provider, _, model, completion) in cases {
        let (status, h, body) = s.chat_json(json!({"model": provider, "messages": user("hi")})).await;
        assert_eq!(status, 200, "{provider}: {body}");
        assert_eq!(body["model"], model);
        assert!(body["choices"][0]["message"]["content"].as_str().is_some_and(|c| !c.is_empty()), "{provider}: {body}");
        if completion > 0 {
            assert_eq!(body["usage"]["completion_tokens"], completion);
        }
        assert!(!header(&h, "x-meridian-cost-usd").is_empty(), "{provider}: priced from the built-in table");
    }
}

#[tokio::test]
async fn shutdown_drains_in_flight_streams() {
    let mut s = Stack::start(Setup::models("deployments:\n  - { name: d, provider: openai, model: \"drain@tps=20,tokens=20\" }\nmodels:\n  - { name: m, deployments: [d] }\n")).await;
    let mut r = s.chat(json!({"model": "m", "stream": true, "messages": user("hi")})).await;
    let first = r.chunk().await.unwrap().unwrap();
    s.gw.terminate();
    let mut raw = String::from_utf8_lossy(&first).into_owned();
    while let Some(c) = r.chunk().await.unwrap() {
        raw.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(raw.trim_end().ends_with("data: [DONE]"), "the in-flight stream finished: {raw}");
    assert!(s.gw.exited_within(std::time::Duration::from_secs(5)), "the gateway exited after draining");
}
