//! Every failure behaviour of the failover engine, through real HTTP against the mock.

use meridian_e2e::*;
use serde_json::json;

const TWO: &str = r#"
deployments:
  - { name: primary, provider: openai, model: "PRIMARY" }
  - { name: backup, provider: anthropic, model: claude-backup }
models:
  - { name: m, deployments: [primary, backup] }
"#;

async fn two(primary_model: &str) -> Stack {
    Stack::start(Setup::models(&TWO.replace("PRIMARY", primary_model))).await
}

#[tokio::test]
async fn server_error_fails_over_to_the_next_deployment() {
    let s = two("p5xx@status=500").await;
    let (status, h, body) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "x-meridian-deployment"), "backup");
    assert_eq!(header(&h, "x-meridian-provider"), "anthropic");
    assert_eq!(header(&h, "x-meridian-attempts"), "2");
    assert_eq!(body["model"], "claude-backup", "body names the model that answered");
    assert!(header(&h, "x-meridian-overhead-ms").parse::<f64>().unwrap() >= 0.0);
    assert_eq!(s.attempts("p5xx").await.len(), 1, "failed over at once, no retry on the same deployment");
}

#[tokio::test]
async fn connection_refused_and_reset_fail_over() {
    let s = Stack::start(Setup::models(
        r#"
deployments:
  - { name: dead, provider: dead, model: gpt-4o }
  - { name: resetting, provider: openai, model: "rst@reset" }
  - { name: ok, provider: openai, model: fine }
models:
  - { name: m, deployments: [dead, resetting, ok] }
"#,
    ))
    .await;
    let (status, h, _) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-meridian-deployment"), "ok");
    assert_eq!(header(&h, "x-meridian-attempts"), "3");
    assert_eq!(s.attempts("rst").await.len(), 1);
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff_and_bounded() {
    let s = Stack::start(Setup::models(
        r#"
deployments:
  - { name: only, provider: openai, model: "flaky@status=503,fail_first=1" }
  - { name: down, provider: openai, model: "down@status=502" }
models:
  - { name: flaky, deployments: [only] }
  - { name: down, deployments: [down] }
"#,
    ))
    .await;
    let (status, h, _) = s.chat_json(json!({"model": "flaky", "messages": user("hi")})).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-meridian-attempts"), "2");
    let a = s.attempts("flaky").await;
    let gap = a[1]["at_ms"].as_f64().unwrap() - a[0]["at_ms"].as_f64().unwrap();
    assert!(gap >= 10.0, "retry waited a backoff ({gap} ms)");

    let (status, _, body) = s.chat_json(json!({"model": "down", "messages": user("hi")})).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["type"], "upstream_error");
    assert_eq!(s.attempts("down").await.len(), 2, "max_attempts_per_deployment bounds the retries");
}

#[tokio::test]
async fn retry_after_seconds_and_http_date_are_honoured() {
    let s = Stack::start(Setup::models(
        r#"
deployments:
  - { name: a, provider: openai, model: "ra-secs@status=429,retry_after=1,fail_first=1" }
  - { name: b, provider: openai, model: "ra-date@status=429,retry_after_date=2,fail_first=1" }
  - { name: c, provider: openai, model: "ra-long@status=429,retry_after=60" }
models:
  - { name: secs, deployments: [a] }
  - { name: date, deployments: [b] }
  - { name: long, deployments: [c] }
"#,
    ))
    .await;
    for (model, tag, min_gap) in [("secs", "ra-secs", 1000.0), ("date", "ra-date", 1000.0)] {
        let (status, _, body) = s.chat_json(json!({"model": model, "messages": user("hi")})).await;
        assert_eq!(status, 200, "{body}");
        let a = s.attempts(tag).await;
        assert_eq!(a.len(), 2);
        let gap = a[1]["at_ms"].as_f64().unwrap() - a[0]["at_ms"].as_f64().unwrap();
        assert!(gap >= min_gap, "{model}: waited {gap} ms");
    }
    // A Retry-After beyond the cap (10 s) is not waited for: 429 straight back.
    let r = s.chat(json!({"model": "long", "messages": user("hi")})).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(s.attempts("ra-long").await.len(), 1);
}

#[tokio::test]
async fn bad_requests_are_never_retried() {
    let s = two("bad400@status=400").await;
    let (status, _, body) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(s.attempts("bad400").await.len(), 1);
    assert!(s.attempts("claude-backup").await.is_empty(), "a bad request is the client's: no failover");
}

#[tokio::test]
async fn context_length_goes_to_the_larger_model_or_is_reported() {
    let s = Stack::start(Setup::models(
        r#"
deployments:
  - { name: small, provider: openai, model: "small@context_length" }
  - { name: big, provider: gemini, model: gemini-big }
models:
  - { name: with-fallback, deployments: [small], context_fallbacks: [big] }
  - { name: without, deployments: [small] }
"#,
    ))
    .await;
    let (status, h, body) = s.chat_json(json!({"model": "with-fallback", "messages": user("long")})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "x-meridian-deployment"), "big");
    assert_eq!(body["model"], "gemini-big");
    let (status, _, body) = s.chat_json(json!({"model": "without", "messages": user("long")})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("maximum context length"));
}

#[tokio::test]
async fn content_policy_propagates_the_providers_reason() {
    let s = two("policy@content_policy").await;
    let (status, _, body) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "content_policy_violation");
    assert!(body["error"]["message"].as_str().unwrap().contains("safety system"), "{body}");
    assert_eq!(s.attempts("policy").await.len(), 1);
}

#[tokio::test]
async fn a_silent_provider_times_out_within_budget_and_is_not_retried() {
    let s = Stack::start(Setup::models(
        r#"
routes:
  default:
    timeouts: { connect_ms: 500, first_byte_ms: 300, first_token_ms: 300, idle_ms: 300, total_ms: 5000 }
deployments:
  - { name: silent, provider: openai, model: "silent@hang" }
  - { name: ok, provider: openai, model: fine }
models:
  - { name: alone, deployments: [silent] }
  - { name: m, deployments: [silent, ok] }
"#,
    ))
    .await;
    let t0 = std::time::Instant::now();
    let (status, _, body) = s.chat_json(json!({"model": "alone", "messages": user("hi")})).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["type"], "timeout_error");
    assert!(t0.elapsed().as_millis() < 5000, "ended within the total budget");
    assert_eq!(s.attempts("silent").await.len(), 1, "not retried on the same deployment");
    let (status, h, _) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-meridian-deployment"), "ok");
}

#[tokio::test]
async fn slow_first_token_fails_over_invisibly_in_a_stream() {
    let s = Stack::start(Setup::models(
        r#"
routes:
  default:
    timeouts: { connect_ms: 500, first_byte_ms: 1000, first_token_ms: 300, idle_ms: 1000, total_ms: 10000 }
deployments:
  - { name: slow, provider: openai, model: "slow@ttft=3000" }
  - { name: ok, provider: gemini, model: gemini-ok }
models:
  - { name: m, deployments: [slow, ok] }
"#,
    ))
    .await;
    let sse = read_sse(s.chat(json!({"model": "m", "stream": true, "messages": user("hi")})).await).await;
    assert_eq!(sse.status, 200);
    assert_eq!(header(&sse.headers, "x-meridian-deployment"), "ok");
    assert!(sse.done);
    assert!(sse.error().is_none());
    assert_eq!(sse.text(), mock_answer(&s, "hi").await, "the client saw only the fallback's answer");
    assert!(sse.events.iter().all(|e| e["model"] == "gemini-ok"));
}

#[tokio::test]
async fn a_failure_before_the_first_token_fails_over_invisibly() {
    for fault in ["cut=0", "status=503", "malformed=0", "error_after=0"] {
        let s = two(&format!("early@{fault}")).await;
        let sse = read_sse(s.chat(json!({"model": "m", "stream": true, "messages": user("q")})).await).await;
        assert_eq!(sse.status, 200, "{fault}");
        assert!(sse.done && sse.error().is_none(), "{fault}: {}", sse.raw);
        assert_eq!(header(&sse.headers, "x-meridian-deployment"), "backup", "{fault}");
        assert_eq!(sse.text(), mock_answer(&s, "q").await, "{fault}");
    }
}

#[tokio::test]
async fn a_stream_cut_after_tokens_is_continued_on_the_fallback() {
    for fault in ["cut=4", "malformed=4", "error_after=4", "stall=4"] {
        let s = two(&format!("brk@{fault}")).await;
        let q = format!("question for {fault}");
        let sse = read_sse(s.chat(json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": user(&q)})).await).await;
        assert_eq!(sse.status, 200);
        assert!(sse.error().is_none(), "{fault}: {}", sse.raw);
        assert!(sse.done, "{fault}");
        assert_eq!(sse.text(), mock_answer(&s, &q).await, "{fault}: stitched answer is exactly the full answer");
        let cont = s.attempts("claude-backup").await;
        assert_eq!(cont.len(), 1);
        assert!(!cont[0]["last_message"].as_str().unwrap().is_empty(), "the continuation carried the partial answer");
        assert!(sse.usage().is_some(), "{fault}: finalised with usage");
        let ids: std::collections::HashSet<_> = sse.events.iter().map(|e| e["id"].clone()).collect();
        assert_eq!(ids.len(), 1, "one id across attempts");
    }
}

#[tokio::test]
async fn a_broken_stream_with_no_fallback_ends_with_an_error_not_a_clean_finish() {
    let s = Stack::start(Setup::models(
        r#"
routes:
  default:
    timeouts: { connect_ms: 500, first_byte_ms: 1000, first_token_ms: 1000, idle_ms: 300, total_ms: 10000 }
    retry: { max_attempts_per_deployment: 1 }
deployments:
  - { name: cut, provider: openai, model: "cutonly@cut=3" }
  - { name: stall, provider: anthropic, model: "stallonly@stall=3" }
models:
  - { name: cut, deployments: [cut] }
  - { name: stall, deployments: [stall] }
"#,
    ))
    .await;
    for model in ["cut", "stall"] {
        let sse = read_sse(s.chat(json!({"model": model, "stream": true, "messages": user("hi")})).await).await;
        assert_eq!(sse.status, 200);
        assert!(!sse.done, "{model}: no [DONE] after a broken stream: {}", sse.raw);
        assert!(sse.finish_reason().is_none(), "{model}: no finish_reason");
        let err = sse.error().unwrap_or_else(|| panic!("{model}: in-band error expected: {}", sse.raw));
        assert_eq!(err["code"], "stream_interrupted");
        assert!(!sse.text().is_empty(), "tokens had been sent");
    }
}

#[tokio::test]
async fn a_stream_missing_its_terminator_is_finalised_with_usage() {
    for (provider, model) in [("openai", "nodone-oa@no_done"), ("anthropic", "nodone-an@no_done")] {
        let s = Stack::start(Setup::models(&format!(
            "deployments:\n  - {{ name: d, provider: {provider}, model: \"{model}\" }}\nmodels:\n  - {{ name: m, deployments: [d] }}\n"
        )))
        .await;
        let sse = read_sse(s.chat(json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": user("hi")})).await).await;
        assert!(sse.done, "{provider}: {}", sse.raw);
        assert!(sse.error().is_none());
        assert_eq!(sse.finish_reason(), Some("stop"));
        assert!(sse.usage().unwrap()["completion_tokens"].as_u64().unwrap() > 0);
        assert_eq!(s.attempts("nodone").await.len(), 1, "finalised, not retried");
    }
}

#[tokio::test]
async fn gemini_stream_without_finish_reason_is_not_a_clean_finish() {
    let s = Stack::start(Setup::models(
        "routes:\n  default:\n    retry: { max_attempts_per_deployment: 1 }\ndeployments:\n  - { name: g, provider: gemini, model: \"gem@no_done\" }\nmodels:\n  - { name: m, deployments: [g] }\n",
    ))
    .await;
    let sse = read_sse(s.chat(json!({"model": "m", "stream": true, "messages": user("hi")})).await).await;
    assert!(!sse.done, "{}", sse.raw);
    assert!(sse.error().is_some());
}

#[tokio::test]
async fn circuit_breaker_opens_then_probes_after_cooldown() {
    let s = Stack::start(Setup::models(
        r#"
breaker: { failure_threshold: 2, cooldown_ms: 400 }
deployments:
  - { name: flap, provider: openai, model: "brk@status=503" }
  - { name: ok, provider: openai, model: fine }
models:
  - { name: m, deployments: [flap, ok] }
"#,
    ))
    .await;
    for _ in 0..2 {
        let (status, _, _) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
        assert_eq!(status, 200);
    }
    assert_eq!(s.attempts("brk").await.len(), 2);
    let (_, h, _) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(header(&h, "x-meridian-attempts"), "1", "open breaker: the broken deployment is skipped");
    assert_eq!(s.attempts("brk").await.len(), 2);
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("meridian_breaker_state{deployment=\"flap\"} 2"), "{metrics}");
    // After the cooldown one probe goes through (and fails again here).
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let _ = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(s.attempts("brk").await.len(), 3, "half-open probe");
}

#[tokio::test]
async fn weighted_routing_prefers_the_faster_deployment() {
    let s = Stack::start(Setup::models(
        r#"
deployments:
  - { name: fast, provider: openai, model: fastone }
  - { name: slow, provider: openai, model: "slowone@latency=40" }
models:
  - { name: m, deployments: [fast, slow], strategy: weighted }
"#,
    ))
    .await;
    let mut fast = 0;
    for _ in 0..60 {
        let (_, h, _) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
        if header(&h, "x-meridian-deployment") == "fast" {
            fast += 1;
        }
    }
    assert!((30..60).contains(&fast), "p2c on EWMA favours the fast one but still samples the other: {fast}/60");
}

#[tokio::test]
async fn usage_and_cost_are_billed_to_the_deployment_that_answered() {
    let s = Stack::start(Setup::models(
        r#"
deployments:
  - { name: failing, provider: openai, model: "gpt-4o@status=500", price: { input: 1000.0, output: 1000.0 } }
  - { name: answering, provider: openai, model: "gpt-4o-mini", price: { input: 1.0, output: 2.0 } }
models:
  - { name: m, deployments: [failing, answering] }
"#,
    ))
    .await;
    let (status, h, body) = s.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200);
    let u = &body["usage"];
    let expected = (u["prompt_tokens"].as_f64().unwrap() * 1.0 + u["completion_tokens"].as_f64().unwrap() * 2.0) / 1e6;
    let cost: f64 = header(&h, "x-meridian-cost-usd").parse().unwrap();
    assert!((cost - expected).abs() < 1e-9, "cost {cost} vs {expected}: only the answering deployment's price");
    // The usage event names the answering deployment.
    for _ in 0..50 {
        if s.gw.logs().contains("\\\"deployment\\\":\\\"answering\\\"") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no usage event for the answering deployment: {}", s.gw.logs());
}
