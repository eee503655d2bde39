//! The OpenAI-compatible surface: auth, residency, limits, errors, tools, every provider.

use meridian_e2e::*;
use serde_json::{json, Value};

const ALL: &str = r#"
limits: { max_body_bytes: 20000, max_messages: 4, requests_per_minute: 1000 }
deployments:
  - { name: oa, provider: openai, model: gpt-4o }
  - { name: an, provider: anthropic, model: claude-haiku-4-5 }
  - { name: ge, provider: gemini, model: gemini-2.0-flash }
  - { name: ds, provider: deepseek, model: deepseek-reasoner }
  - { name: mi, provider: mistral, model: mistral-small-latest }
  - { name: bad, provider: badkey, model: gpt-4o }
  - { name: emb, provider: openai, model: text-embedding-3-small }
models:
  - { name: openai, deployments: [oa] }
  - { name: anthropic, deployments: [an] }
  - { name: gemini, deployments: [ge] }
  - { name: deepseek, deployments: [ds] }
  - { name: mistral, deployments: [mi] }
  - { name: misconfigured, deployments: [bad] }
  - { name: allowed, deployments: [oa] }
  - { name: regional, deployments: [an, ge] }
  - { name: embed, deployments: [emb] }
"#;

async fn stack() -> Stack {
    Stack::start(Setup::models(ALL)).await
}

async fn status_and_error(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("errors are JSON");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "OpenAI envelope: {body}");
    assert!(body["error"].get("type").is_some() && body["error"].get("param").is_some() && body["error"].get("code").is_some(), "{body}");
    (status, body)
}

#[tokio::test]
async fn every_provider_answers_in_openai_shape_stream_and_not() {
    let s = stack().await;
    let expected = mock_answer(&s, "hello").await;
    for (model, answered) in [("openai", "gpt-4o"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.0-flash"), ("deepseek", "deepseek-reasoner"), ("mistral", "mistral-small-latest")] {
        let (status, _, body) = s.chat_json(json!({"model": model, "messages": user("hello")})).await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], answered);
        assert_eq!(body["choices"][0]["message"]["content"], expected.as_str(), "{model}");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);

        let sse = read_sse(s.chat(json!({"model": model, "stream": true, "stream_options": {"include_usage": true}, "messages": user("hello")})).await).await;
        assert_eq!(sse.status, 200);
        assert!(sse.done, "{model}: {}", sse.raw);
        assert_eq!(sse.text(), expected, "{model}");
        assert_eq!(sse.events[0]["choices"][0]["delta"]["role"], "assistant", "{model}");
        assert!(sse.events.iter().all(|e| e["object"] == "chat.completion.chunk"));
        assert!(sse.usage().is_some(), "{model}");
        assert_eq!(sse.finish_reason(), Some("stop"));
    }
    let (_, _, body) = s.chat_json(json!({"model": "deepseek", "messages": user("hello")})).await;
    assert!(body["choices"][0]["message"]["reasoning_content"].as_str().is_some_and(|r| !r.is_empty()));
}

#[tokio::test]
async fn usage_chunk_only_when_asked() {
    let s = stack().await;
    let sse = read_sse(s.chat(json!({"model": "anthropic", "stream": true, "messages": user("hi")})).await).await;
    assert!(sse.done);
    assert!(sse.usage().is_none(), "no include_usage: no usage chunk");
}

#[tokio::test]
async fn tool_calls_translate_for_every_provider() {
    let s = stack().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    for model in ["openai", "anthropic", "gemini"] {
        let (status, _, body) = s.chat_json(json!({"model": model, "messages": user("weather in Paris?"), "tools": tools})).await;
        assert_eq!(status, 200, "{body}");
        let call = &body["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function", "{model}: {body}");
        assert_eq!(call["function"]["name"], "get_weather");
        let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args["city"], "Paris");
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");

        let sse = read_sse(s.chat(json!({"model": model, "stream": true, "messages": user("weather in Paris?"), "tools": tools})).await).await;
        let mut name = String::new();
        let mut args = String::new();
        for e in &sse.events {
            for tc in e.pointer("/choices/0/delta/tool_calls").and_then(Value::as_array).into_iter().flatten() {
                name.push_str(tc.pointer("/function/name").and_then(Value::as_str).unwrap_or(""));
                args.push_str(tc.pointer("/function/arguments").and_then(Value::as_str).unwrap_or(""));
            }
        }
        assert_eq!(name, "get_weather", "{model}: {}", sse.raw);
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap()["city"], "Paris", "{model}");
        assert_eq!(sse.finish_reason(), Some("tool_calls"));

        // The tool result goes back and the model answers in text.
        let messages = json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
        ]);
        let (status, _, body) = s.chat_json(json!({"model": model, "messages": messages, "tools": tools})).await;
        assert_eq!(status, 200, "{model}: {body}");
        assert!(body["choices"][0]["message"]["content"].as_str().is_some_and(|c| !c.is_empty()), "{model}: {body}");
    }
}

#[tokio::test]
async fn images_and_system_prompts_reach_every_provider() {
    let s = stack().await;
    let messages = json!([
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
    ]);
    for model in ["openai", "anthropic", "gemini"] {
        let (status, _, body) = s.chat_json(json!({"model": model, "messages": messages, "seed": 3, "stop": ["END"], "response_format": {"type": "json_object"}, "max_completion_tokens": 50})).await;
        assert_eq!(status, 200, "{model}: {body}");
    }
}

#[tokio::test]
async fn authentication_errors() {
    let s = stack().await;
    let r = s.http.post(s.url("/v1/chat/completions")).json(&json!({"model": "openai", "messages": user("hi")})).send().await.unwrap();
    let (status, body) = status_and_error(r).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let r = s.post("/v1/chat/completions", "sk-wrong", &json!({"model": "openai", "messages": user("hi")})).await;
    assert_eq!(status_and_error(r).await.0, 401);
}

#[tokio::test]
async fn a_tenant_homed_in_another_region_is_refused() {
    let s = stack().await;
    let r = s.post("/v1/chat/completions", &s.us_key, &json!({"model": "openai", "messages": user("hi")})).await;
    let (status, body) = status_and_error(r).await;
    assert_eq!(status, 403);
    assert!(body["error"]["message"].as_str().unwrap().contains("homed in region us"), "{body}");
    assert!(s.attempts("").await.is_empty(), "nothing reached a provider");
}

#[tokio::test]
async fn rbac_and_in_region_providers() {
    let s = stack().await;
    let r = s.post("/v1/chat/completions", &s.restricted_key, &json!({"model": "openai", "messages": user("hi")})).await;
    assert_eq!(status_and_error(r).await.0, 403);
    let r = s.post("/v1/chat/completions", &s.restricted_key, &json!({"model": "allowed", "messages": user("hi")})).await;
    assert_eq!(r.status(), 200);
    // `regional` lists the US-tagged anthropic first; the EU tenant restricted to its region gets gemini (EU).
    let r = s.post("/v1/chat/completions", &s.restricted_key, &json!({"model": "regional", "messages": user("hi")})).await;
    assert_eq!(header(r.headers(), "x-meridian-deployment"), "ge");
    assert!(s.attempts("claude").await.is_empty(), "the out-of-region provider was never called");
    let models: Value = s.http.get(s.url("/v1/models")).bearer_auth(&s.restricted_key).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["allowed", "regional"]);
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let s = stack().await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "not valid JSON"),
        (b"".to_vec(), 400, "empty"),
        (br#"{"model":"openai"}"#.to_vec(), 400, "messages"),
        (br#"{"model":"openai","messages":[]}"#.to_vec(), 400, "at least one message"),
        (br#"{"model":"openai","messages":[{"role":"wizard","content":"x"}]}"#.to_vec(), 400, "messages[0].role"),
        (br#"{"model":"openai","messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}"#.to_vec(), 400, "max_tokens"),
        (br#"{"model":"openai","messages":[{"role":"user","content":"x"}],"temperature":7}"#.to_vec(), 400, "temperature"),
        (br#"{"model":"openai","messages":[{"role":"user","content":"x"}],"n":3}"#.to_vec(), 400, "n = 1"),
        (br#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#.to_vec(), 404, "does not exist"),
        (serde_json::to_vec(&json!({"model": "openai", "messages": [user("1")[0], user("2")[0], user("3")[0], user("4")[0], user("5")[0]]})).unwrap(), 400, "too many messages"),
        (serde_json::to_vec(&json!({"model": "openai", "messages": user(&"x".repeat(30000))})).unwrap(), 413, "larger than the limit of 20000"),
    ];
    for (body, want, needle) in cases {
        let r = s.http.post(s.url("/v1/chat/completions")).bearer_auth(&s.key).header("content-type", "application/json").body(body.clone()).send().await.unwrap();
        let (status, err) = status_and_error(r).await;
        assert_eq!(status, want, "{}: {err}", String::from_utf8_lossy(&body[..body.len().min(80)]));
        assert!(err.to_string().contains(needle), "expected {needle:?} in {err}");
    }
    assert!(s.attempts("").await.is_empty(), "no bad request reached a provider");
    let r = s.http.get(s.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(status_and_error(r).await.0, 404);
}

#[tokio::test]
async fn unknown_fields_follow_the_configured_policy() {
    let s = Stack::start(Setup::models(&ALL.replace("requests_per_minute: 1000", "requests_per_minute: 1000, unknown_fields: reject"))).await;
    let r = s.chat(json!({"model": "openai", "messages": user("hi"), "frobnicate": true})).await;
    let (status, body) = status_and_error(r).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "frobnicate");
}

#[tokio::test]
async fn misconfigured_provider_credentials_are_a_502_not_the_clients_fault() {
    let s = stack().await;
    let (status, _, body) = s.chat_json(json!({"model": "misconfigured", "messages": user("hi")})).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Incorrect API key"));
}

#[tokio::test]
async fn rate_limit_holds_and_says_when_to_retry() {
    let s = Stack::start(Setup::models(&ALL.replace("requests_per_minute: 1000", "requests_per_minute: 3"))).await;
    for i in 0..3 {
        let r = s.chat(json!({"model": "openai", "messages": user("hi")})).await;
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(header(r.headers(), "x-ratelimit-remaining-requests"), (2 - i).to_string());
    }
    let r = s.chat(json!({"model": "openai", "messages": user("hi")})).await;
    assert_eq!(r.status(), 429);
    assert!(header(r.headers(), "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(header(r.headers(), "x-ratelimit-limit-requests"), "3");
    let (_, body) = status_and_error(r).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn embeddings_models_health_and_metrics() {
    let s = stack().await;
    let r = s.post("/v1/embeddings", &s.key, &json!({"model": "embed", "input": ["a", "b"]})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let r = s.post("/v1/embeddings", &s.key, &json!({"model": "anthropic", "input": "a"})).await;
    assert_eq!(status_and_error(r).await.0, 400, "providers without embeddings say so");
    let models: Value = s.http.get(s.url("/v1/models")).bearer_auth(&s.key).send().await.unwrap().json().await.unwrap();
    assert!(models["data"].as_array().unwrap().len() >= 9);
    assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(s.http.get(s.url("/readyz")).send().await.unwrap().status(), 200);
    let _ = s.chat_json(json!({"model": "openai", "messages": user("hi")})).await;
    let m = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in ["meridian_provider_latency_seconds_bucket", "meridian_gateway_overhead_seconds_bucket", "meridian_requests_total{route=\"/v1/chat/completions\",status=\"200\"}", "meridian_request_duration_seconds_bucket"] {
        assert!(m.contains(name), "missing {name}");
    }
}

#[tokio::test]
async fn request_ids_are_returned_and_logs_carry_no_secrets() {
    let s = stack().await;
    let r = s.chat(json!({"model": "openai", "messages": user("hi")})).await;
    assert_eq!(header(r.headers(), "x-request-id").len(), 36);
    let _ = s.chat(json!({"model": "misconfigured", "messages": user("hi")})).await;
    let logs = s.gw.logs();
    assert!(logs.contains("\"tenant\":\"tenant-eu\""), "spans carry the tenant: {logs}");
    assert!(!logs.contains(&s.key), "client key in logs");
    assert!(!logs.contains("mock-key"), "provider key in logs");
}
