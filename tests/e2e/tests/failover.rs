//! Every failure behaviour of the driver, through real HTTP against the mock, as one table
//! of scenarios that both hosts run: the regional backend alone, and the edge Worker in
//! workerd (`regional::NAME` and `edge::NAME`). The mock answers continuations as real
//! models do: an instruction turn or an ignored prefill starts the answer over.

use std::time::{Duration, Instant};

use meridian_e2e::*;
use serde_json::{json, Value};

on_both_hosts!(
    server_error_fails_over_to_the_next_deployment,
    connection_refused_and_reset_fail_over,
    transient_errors_are_retried_with_backoff_and_bounded,
    retry_after_seconds_and_http_date_are_honoured,
    bad_requests_are_never_retried,
    context_length_goes_to_the_larger_model_or_is_reported,
    content_policy_propagates_the_providers_reason,
    a_silent_provider_times_out_within_budget_and_is_not_retried,
    slow_first_token_fails_over_invisibly_in_a_stream,
    a_failure_before_the_first_token_fails_over_invisibly,
    a_break_after_tokens_with_no_verifiable_continuation_ends_with_an_error,
    a_prefill_capable_fallback_continues_the_answer_exactly_once,
    a_refused_prefill_reports_the_original_failure,
    an_instruction_continuation_is_opt_in_checked_and_marked,
    a_broken_stream_with_no_fallback_ends_with_an_error_not_a_clean_finish,
    a_stream_missing_its_terminator_is_finalised_with_usage,
    gemini_stream_without_finish_reason_is_not_a_clean_finish,
    circuit_breaker_opens_then_probes_after_cooldown,
    a_recovered_primary_gets_traffic_back_within_the_bound,
    retry_first_waits_out_a_short_retry_after_on_the_primary,
    retry_first_retries_a_one_off_error_on_the_primary,
    weighted_routing_prefers_the_faster_deployment,
    usage_and_cost_are_billed_to_the_deployment_that_answered,
    overhead_excludes_the_providers_time,
    client_disconnect_cancels_the_upstream_request,
    a_keyless_provider_needs_no_key,
);

const TWO: &str = r#"
deployments:
  - { name: primary, provider: openai, model: "PRIMARY" }
  - { name: backup, provider: anthropic, model: claude-backup }
models:
  - { name: m, deployments: [primary, backup] }
"#;

async fn two(host: Host, primary_model: &str) -> Gateway {
    Gateway::start(host, &TWO.replace("PRIMARY", primary_model)).await
}

fn gap_ms(a: &[Value], i: usize, j: usize) -> f64 {
    a[j]["at_ms"].as_f64().unwrap() - a[i]["at_ms"].as_f64().unwrap()
}

async fn server_error_fails_over_to_the_next_deployment(host: Host) {
    let g = two(host, "p5xx@status=500").await;
    let (status, h, body) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "x-meridian-deployment"), "backup");
    assert_eq!(header(&h, "x-meridian-provider"), "anthropic");
    assert_eq!(header(&h, "x-meridian-attempts"), "2");
    assert_eq!(body["model"], "claude-backup", "body names the model that answered");
    assert_eq!(g.attempts("p5xx").await.len(), 1, "failed over at once, no retry on the same deployment");
}

async fn connection_refused_and_reset_fail_over(host: Host) {
    let g = Gateway::start(
        host,
        r#"
deployments:
  - { name: dead, provider: dead, model: gpt-4o }
  - { name: resetting, provider: openai, model: "rst@reset" }
  - { name: ok, provider: openai, model: fine }
models:
  - { name: m, deployments: [dead, resetting, ok] }
"#,
    )
    .await;
    let (status, h, _) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-meridian-deployment"), "ok");
    assert_eq!(header(&h, "x-meridian-attempts"), "3");
    assert_eq!(g.attempts("rst").await.len(), 1);
}

async fn transient_errors_are_retried_with_backoff_and_bounded(host: Host) {
    let g = Gateway::start(
        host,
        r#"
deployments:
  - { name: only, provider: openai, model: "flaky@status=503,fail_first=1" }
  - { name: down, provider: openai, model: "down@status=502" }
models:
  - { name: flaky, deployments: [only] }
  - { name: down, deployments: [down] }
"#,
    )
    .await;
    let (status, h, _) = g.chat_json(json!({"model": "flaky", "messages": user("hi")})).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-meridian-attempts"), "2");
    let a = g.attempts("flaky").await;
    assert!(gap_ms(&a, 0, 1) >= 10.0, "retry waited a backoff ({} ms)", gap_ms(&a, 0, 1));

    let (status, _, body) = g.chat_json(json!({"model": "down", "messages": user("hi")})).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["type"], "upstream_error");
    assert_eq!(g.attempts("down").await.len(), 2, "max_attempts_per_deployment bounds the retries");
}

async fn retry_after_seconds_and_http_date_are_honoured(host: Host) {
    let g = Gateway::start(
        host,
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
    )
    .await;
    for (model, tag, min_gap) in [("secs", "ra-secs", 1000.0), ("date", "ra-date", 1000.0)] {
        let (status, _, body) = g.chat_json(json!({"model": model, "messages": user("hi")})).await;
        assert_eq!(status, 200, "{body}");
        let a = g.attempts(tag).await;
        assert_eq!(a.len(), 2);
        assert!(gap_ms(&a, 0, 1) >= min_gap, "{model}: waited {} ms", gap_ms(&a, 0, 1));
    }
    // A Retry-After beyond the cap (10 s) is not waited for: 429 straight back.
    let r = g.chat(json!({"model": "long", "messages": user("hi")})).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(g.attempts("ra-long").await.len(), 1);
}

async fn bad_requests_are_never_retried(host: Host) {
    let g = two(host, "bad400@status=400").await;
    let (status, _, body) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(g.attempts("bad400").await.len(), 1);
    assert!(g.attempts("claude-backup").await.is_empty(), "a bad request is the client's: no failover");
}

async fn context_length_goes_to_the_larger_model_or_is_reported(host: Host) {
    let g = Gateway::start(
        host,
        r#"
deployments:
  - { name: small, provider: openai, model: "small@context_length" }
  - { name: big, provider: gemini, model: gemini-big }
models:
  - { name: with-fallback, deployments: [small], context_fallbacks: [big] }
  - { name: without, deployments: [small] }
"#,
    )
    .await;
    let (status, h, body) = g.chat_json(json!({"model": "with-fallback", "messages": user("long")})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "x-meridian-deployment"), "big");
    assert_eq!(body["model"], "gemini-big");
    let (status, _, body) = g.chat_json(json!({"model": "without", "messages": user("long")})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("maximum context length"));
}

async fn content_policy_propagates_the_providers_reason(host: Host) {
    let g = two(host, "policy@content_policy").await;
    let (status, _, body) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "content_policy_violation");
    assert!(body["error"]["message"].as_str().unwrap().contains("safety system"), "{body}");
    assert_eq!(g.attempts("policy").await.len(), 1);
}

async fn a_silent_provider_times_out_within_budget_and_is_not_retried(host: Host) {
    let g = Gateway::start(
        host,
        r#"
routes:
  default:
    timeouts: { connect_ms: 500, first_byte_ms: 300, first_token_ms: 300, idle_ms: 300, response_ms: 300, total_ms: 5000 }
deployments:
  - { name: silent, provider: openai, model: "silent@hang" }
  - { name: ok, provider: openai, model: fine }
models:
  - { name: alone, deployments: [silent] }
  - { name: m, deployments: [silent, ok] }
"#,
    )
    .await;
    let t0 = Instant::now();
    let (status, _, body) = g.chat_json(json!({"model": "alone", "messages": user("hi")})).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["type"], "timeout_error");
    assert!(t0.elapsed().as_millis() < 5000, "ended within the total budget");
    assert_eq!(g.attempts("silent").await.len(), 1, "not retried on the same deployment");
    let (status, h, _) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-meridian-deployment"), "ok");
}

async fn slow_first_token_fails_over_invisibly_in_a_stream(host: Host) {
    let g = Gateway::start(
        host,
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
    )
    .await;
    let sse = read_sse(g.chat(json!({"model": "m", "stream": true, "messages": user("hi")})).await).await;
    assert_eq!(sse.status, 200);
    assert_eq!(header(&sse.headers, "x-meridian-deployment"), "ok");
    assert!(sse.done);
    assert!(sse.error().is_none());
    assert_eq!(sse.text(), mock_answer_at(g.mock_url(), "hi").await, "the client saw only the fallback's answer");
    assert!(sse.events.iter().all(|e| e["model"] == "gemini-ok"));
}

async fn a_failure_before_the_first_token_fails_over_invisibly(host: Host) {
    for fault in ["cut=0", "status=503", "malformed=0", "error_after=0"] {
        let g = two(host, &format!("early@{fault}")).await;
        let sse = read_sse(g.chat(json!({"model": "m", "stream": true, "messages": user("q")})).await).await;
        assert_eq!(sse.status, 200, "{fault}");
        assert!(sse.done && sse.error().is_none(), "{fault}: {}", sse.raw);
        assert_eq!(header(&sse.headers, "x-meridian-deployment"), "backup", "{fault}");
        assert_eq!(sse.text(), mock_answer_at(g.mock_url(), "q").await, "{fault}");
    }
}

/// A stream of `model` that breaks after tokens, read to its end.
async fn broken_stream(g: &Gateway, q: &str) -> Sse {
    read_sse(g.chat(json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": user(q)})).await).await
}

fn assert_interrupted(sse: &Sse, full: &str, what: &str) {
    assert_eq!(sse.status, 200, "{what}");
    assert!(!sse.done, "{what}: no [DONE] after a break: {}", sse.raw);
    assert!(sse.finish_reason().is_none(), "{what}: no finish_reason");
    let err = sse.error().unwrap_or_else(|| panic!("{what}: in-band error expected: {}", sse.raw));
    assert_eq!(err["code"], "stream_interrupted", "{what}");
    let text = sse.text();
    assert!(!text.is_empty() && full.starts_with(&text) && text.len() < full.len(), "{what}: the client has a strict prefix of the answer, nothing spliced: {text:?}");
}

async fn a_break_after_tokens_with_no_verifiable_continuation_ends_with_an_error(host: Host) {
    // A fallback whose model is not known to take a prefill is never asked to continue.
    for fault in ["cut=4", "malformed=4", "error_after=4", "stall=4"] {
        let g = Gateway::start(host, &TWO.replace("PRIMARY", &format!("brk@{fault}")).replace("model: claude-backup", "model: \"fallback@prefill\"").replace("provider: anthropic", "provider: openai")).await;
        let q = format!("question for {fault}");
        let sse = broken_stream(&g, &q).await;
        assert_interrupted(&sse, &mock_answer_at(g.mock_url(), &q).await, fault);
        assert!(g.attempts("fallback").await.is_empty(), "{fault}: gpt-style fallback not asked to continue");
        let events = g.usage_events(1).await;
        assert!(events.iter().any(|e| e["interrupted"] == true && e["deployment"] == "primary" && e["completion_tokens"].as_u64() > Some(0)), "{fault}: the usage event says so: {events:?}");
    }
    // A fallback declared capable whose model ignores the prefill and starts over: the
    // seam check discards it.
    let yaml = TWO.replace("PRIMARY", "brk@cut=4").replace("{ name: backup, provider: anthropic, model: claude-backup }", "{ name: backup, provider: openai, model: restarts, prefill: true }");
    let g = Gateway::start(host, &yaml).await;
    let sse = broken_stream(&g, "seam").await;
    assert_interrupted(&sse, &mock_answer_at(g.mock_url(), "seam").await, "restarting fallback");
    assert!(sse.error().unwrap()["message"].as_str().unwrap().contains("restarts the answer"), "{}", sse.raw);
    assert_eq!(g.attempts("restarts").await.len(), 1, "it was asked, and its answer discarded");
}

async fn a_prefill_capable_fallback_continues_the_answer_exactly_once(host: Host) {
    // Declared capable in the config, or known to be by its model family (Claude 4.5).
    let declared = "{ name: backup, provider: anthropic, model: \"claude-backup@prefill\", prefill: true }";
    let known = "{ name: backup, provider: anthropic, model: \"claude-sonnet-4-5@prefill\" }";
    for (fault, backup) in [("cut=4", declared), ("malformed=4", known), ("error_after=4", known), ("stall=4", declared)] {
        let yaml = TWO.replace("PRIMARY", &format!("brk@{fault}")).replace("{ name: backup, provider: anthropic, model: claude-backup }", backup);
        let g = Gateway::start(host, &yaml).await;
        let q = format!("question for {fault}");
        let sse = broken_stream(&g, &q).await;
        assert_eq!(sse.status, 200);
        assert!(sse.error().is_none(), "{fault}: {}", sse.raw);
        assert!(sse.done, "{fault}");
        assert_eq!(sse.text(), mock_answer_at(g.mock_url(), &q).await, "{fault}: exactly the full answer, once");
        let cont = g.attempts("claude-").await;
        assert_eq!(cont.len(), 1);
        assert!(!cont[0]["last_message"].as_str().unwrap().is_empty(), "the continuation carried the partial answer");
        assert!(sse.usage().is_some(), "{fault}: finalised with usage");
        assert!(sse.raw.contains("x-meridian-continued=prefill"), "{fault}: marked: {}", sse.raw);
        let ids: std::collections::HashSet<_> = sse.events.iter().map(|e| e["id"].clone()).collect();
        assert_eq!(ids.len(), 1, "one id across attempts");
    }
}

async fn a_refused_prefill_reports_the_original_failure(host: Host) {
    // Declared capable, but the model (like Claude 4.6+) refuses the prefill with a 400.
    let yaml = TWO.replace("PRIMARY", "brk@cut=4").replace("{ name: backup, provider: anthropic, model: claude-backup }", "{ name: backup, provider: anthropic, model: claude-opus-4-6, prefill: true }");
    let g = Gateway::start(host, &yaml).await;
    let sse = broken_stream(&g, "refused").await;
    assert_interrupted(&sse, &mock_answer_at(g.mock_url(), "refused").await, "refused prefill");
    let msg = sse.error().unwrap()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("stream cut"), "the original failure: {msg}");
    assert!(!msg.contains("prefill") && !msg.contains("400"), "never the continuation's 400: {msg}");
    assert_eq!(g.attempts("claude-opus-4-6").await.len(), 1, "it was asked");
}

async fn an_instruction_continuation_is_opt_in_checked_and_marked(host: Host) {
    const ROUTE: &str = "routes:\n  default:\n    timeouts: { connect_ms: 500, first_byte_ms: 2000, first_token_ms: 2000, idle_ms: 1000, total_ms: 10000 }\n    retry: { backoff_base_ms: 20, backoff_max_ms: 200, continue_broken_streams: instruction }\n";
    let base = format!("{ROUTE}{}", TWO.replace("PRIMARY", "brk@cut=4").replace("provider: anthropic, model: claude-backup", "provider: openai, model: \"BACKUP\""));
    // A real model asked to continue starts over: discarded by the seam check.
    let g = Gateway::start(host, &base.replace("BACKUP", "restarts")).await;
    let sse = broken_stream(&g, "instruction").await;
    assert_interrupted(&sse, &mock_answer_at(g.mock_url(), "instruction").await, "restarting instruction continuation");
    let asked = g.attempts("restarts").await;
    assert_eq!(asked.len(), 1);
    assert!(asked[0]["last_message"].as_str().unwrap().starts_with("Continue your previous answer"));
    // One that does carry on: used, and marked as unverifiable.
    let g = Gateway::start(host, &base.replace("BACKUP", "carries-on@cooperative")).await;
    let sse = broken_stream(&g, "instruction ok").await;
    assert!(sse.done && sse.error().is_none(), "{}", sse.raw);
    assert_eq!(sse.text(), mock_answer_at(g.mock_url(), "instruction ok").await);
    assert!(sse.raw.contains("x-meridian-continued=instruction"), "{}", sse.raw);
    let events = g.usage_events(1).await;
    assert!(events.iter().any(|e| e["continued"] == "instruction"), "{events:?}");
}

async fn a_broken_stream_with_no_fallback_ends_with_an_error_not_a_clean_finish(host: Host) {
    let g = Gateway::start(
        host,
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
    )
    .await;
    for model in ["cut", "stall"] {
        let sse = read_sse(g.chat(json!({"model": model, "stream": true, "messages": user("hi")})).await).await;
        assert_eq!(sse.status, 200);
        assert!(!sse.done, "{model}: no [DONE] after a broken stream: {}", sse.raw);
        assert!(sse.finish_reason().is_none(), "{model}: no finish_reason");
        let err = sse.error().unwrap_or_else(|| panic!("{model}: in-band error expected: {}", sse.raw));
        assert_eq!(err["code"], "stream_interrupted");
        assert!(!sse.text().is_empty(), "tokens had been sent");
    }
}

async fn a_stream_missing_its_terminator_is_finalised_with_usage(host: Host) {
    for (provider, model) in [("openai", "nodone-oa@no_done"), ("anthropic", "nodone-an@no_done")] {
        let g = Gateway::start(host, &format!("deployments:\n  - {{ name: d, provider: {provider}, model: \"{model}\" }}\nmodels:\n  - {{ name: m, deployments: [d] }}\n")).await;
        let sse = read_sse(g.chat(json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": user("hi")})).await).await;
        assert!(sse.done, "{provider}: {}", sse.raw);
        assert!(sse.error().is_none());
        assert_eq!(sse.finish_reason(), Some("stop"));
        assert!(sse.usage().unwrap()["completion_tokens"].as_u64().unwrap() > 0);
        assert_eq!(g.attempts("nodone").await.len(), 1, "finalised, not retried");
    }
}

async fn gemini_stream_without_finish_reason_is_not_a_clean_finish(host: Host) {
    let g = Gateway::start(host, "routes:\n  default:\n    retry: { max_attempts_per_deployment: 1 }\ndeployments:\n  - { name: g, provider: gemini, model: \"gem@no_done\" }\nmodels:\n  - { name: m, deployments: [g] }\n").await;
    let sse = read_sse(g.chat(json!({"model": "m", "stream": true, "messages": user("hi")})).await).await;
    assert!(!sse.done, "{}", sse.raw);
    assert!(sse.error().is_some());
}

async fn circuit_breaker_opens_then_probes_after_cooldown(host: Host) {
    let g = Gateway::start(
        host,
        r#"
breaker: { failure_threshold: 2, cooldown_ms: 400 }
deployments:
  - { name: flap, provider: openai, model: "brk@status=503" }
  - { name: ok, provider: openai, model: fine }
models:
  - { name: m, deployments: [flap, ok] }
"#,
    )
    .await;
    for _ in 0..2 {
        let (status, _, _) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
        assert_eq!(status, 200);
    }
    assert_eq!(g.attempts("brk").await.len(), 2);
    let (_, h, _) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(header(&h, "x-meridian-attempts"), "1", "open breaker: the broken deployment is skipped");
    assert_eq!(g.attempts("brk").await.len(), 2);
    let gauge = match host {
        Host::Regional => "meridian_breaker_state{deployment=\"flap\"} 2",
        Host::Edge => "meridian_edge_breaker_state{deployment=\"flap\"} 2",
    };
    g.metrics_containing(gauge).await.unwrap_or_else(|m| panic!("{gauge} not in {m}"));
    // After the cooldown one probe goes through (and fails again here).
    tokio::time::sleep(Duration::from_millis(450)).await;
    let _ = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(g.attempts("brk").await.len(), 3, "half-open probe");
    // Failed again: the next cooldown is twice as long (800 ms), so 450 ms later it is
    // still skipped.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let _ = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(g.attempts("brk").await.len(), 3, "cooldown doubled after a failed probe");
}

/// With the default breaker (5 failures, cooldown 1 s doubling to at most 4 s): a primary
/// down for 6 s then healthy gets traffic back within 4 s + one failed probe + one request
/// interval of its recovery, and no client request fails meanwhile.
async fn a_recovered_primary_gets_traffic_back_within_the_bound(host: Host) {
    let g = Gateway::start(
        host,
        r#"
deployments:
  - { name: primary, provider: openai, model: "flapping@flap=6" }
  - { name: backup, provider: gemini, model: gemini-backup }
models:
  - { name: m, deployments: [primary, backup] }
"#,
    )
    .await;
    let started = Instant::now();
    let mut first_back = None;
    let mut answered_by_backup = 0;
    while started.elapsed() < Duration::from_secs(16) {
        let (status, h, body) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
        assert_eq!(status, 200, "no client request fails: {body}");
        let by = header(&h, "x-meridian-deployment").to_string();
        if by == "backup" {
            answered_by_backup += 1;
        }
        if by == "primary" && started.elapsed() > Duration::from_secs(6) {
            first_back = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered_by_backup > 5, "the backup covered the outage");
    let back = first_back.expect("traffic came back to the primary");
    let attempts = g.attempts("flapping").await;
    let outage_end = attempts[0]["at_ms"].as_f64().unwrap() + 6_000.0;
    let first_ok = attempts.iter().map(|a| a["at_ms"].as_f64().unwrap()).find(|&t| t >= outage_end).expect("a probe after the outage");
    assert!(first_ok - outage_end <= 5_500.0, "back {:.0} ms after recovery (bound 4 s + a probe + a request interval); client saw it at {back:?}", first_ok - outage_end);
    assert!(attempts.len() < 40, "an open breaker kept most requests off the primary: {} attempts", attempts.len());
}

const RETRY_FIRST: &str = "routes:\n  default:\n    timeouts: { connect_ms: 500, first_byte_ms: 2000, first_token_ms: 2000, idle_ms: 1000, total_ms: 10000 }\n    retry: { backoff_base_ms: 20, backoff_max_ms: 200, on_transient: retry_first }\n";

async fn retry_first_waits_out_a_short_retry_after_on_the_primary(host: Host) {
    let g = Gateway::start(host, &format!("{RETRY_FIRST}{}", TWO.replace("PRIMARY", "rl@status=429,retry_after=1,fail_first=1"))).await;
    let (status, h, body) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "x-meridian-deployment"), "primary");
    let a = g.attempts("rl@").await;
    assert_eq!(a.len(), 2);
    assert!(gap_ms(&a, 0, 1) >= 1000.0, "waited the Retry-After: {} ms", gap_ms(&a, 0, 1));
    assert!(g.attempts("claude-backup").await.is_empty(), "stayed on the primary");
}

async fn retry_first_retries_a_one_off_error_on_the_primary(host: Host) {
    let g = Gateway::start(host, &format!("{RETRY_FIRST}{}", TWO.replace("PRIMARY", "oneoff@status=500,fail_first=1"))).await;
    let (status, h, body) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "x-meridian-deployment"), "primary");
    assert_eq!(body["choices"][0]["message"]["content"], mock_answer_at(g.mock_url(), "hi").await.as_str());
    assert_eq!(g.attempts("oneoff").await.len(), 2);
    assert!(g.attempts("claude-backup").await.is_empty());
    // The default (fail over first) would have gone to the backup.
    let g = two(host, "oneoff@status=500,fail_first=1").await;
    let (_, h, _) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(header(&h, "x-meridian-deployment"), "backup");
}

/// Power of two choices on latency: once both latencies are known, the fast deployment is
/// the head unless both draws pick the slow one — 3/4 of requests. Over 200 requests a
/// coin flip or round robin (1/2: 100) and "always the fastest" (200) are far outside
/// [125, 185] (more than 3.5 standard deviations); P2C is inside with probability > 0.9999.
async fn weighted_routing_prefers_the_faster_deployment(host: Host) {
    let g = Gateway::start(
        host,
        r#"
deployments:
  - { name: fast, provider: openai, model: fastone }
  - { name: slow, provider: openai, model: "slowone@latency=25" }
models:
  - { name: m, deployments: [fast, slow], strategy: weighted }
"#,
    )
    .await;
    // Both latencies known before counting.
    while g.attempts("slowone").await.is_empty() || g.attempts("fastone").await.is_empty() {
        let _ = g.chat_json(json!({"model": "m", "messages": user("warm")})).await;
    }
    let mut fast = 0;
    for _ in 0..200 {
        let (_, h, _) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
        if header(&h, "x-meridian-deployment") == "fast" {
            fast += 1;
        }
    }
    assert!((125..=185).contains(&fast), "P2C on EWMA sends ~150/200 to the faster deployment: {fast}/200");
}

async fn usage_and_cost_are_billed_to_the_deployment_that_answered(host: Host) {
    let g = Gateway::start(
        host,
        r#"
deployments:
  - { name: failing, provider: openai, model: "gpt-4o@status=500", price: { input: 1000.0, output: 1000.0 } }
  - { name: answering, provider: openai, model: "gpt-4o-mini", price: { input: 1.0, output: 2.0 } }
models:
  - { name: m, deployments: [failing, answering] }
"#,
    )
    .await;
    let (status, h, body) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(status, 200);
    let u = &body["usage"];
    let expected = (u["prompt_tokens"].as_f64().unwrap() * 1.0 + u["completion_tokens"].as_f64().unwrap() * 2.0) / 1e6;
    let cost: f64 = header(&h, "x-meridian-cost-usd").parse().unwrap();
    assert!((cost - expected).abs() < 1e-9, "cost {cost} vs {expected}: only the answering deployment's price");
    let events = g.usage_events(1).await;
    let e = events.iter().find(|e| e["deployment"] == "answering").unwrap_or_else(|| panic!("no usage event for the answering deployment: {events:?}"));
    assert!((e["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-9);
    if host == Host::Edge {
        let outcomes: Vec<_> = e["attempts"].as_array().unwrap().iter().map(|a| (a["deployment"].as_str().unwrap(), a["outcome"].as_str().unwrap())).collect();
        assert_eq!(outcomes, vec![("failing", "transient"), ("answering", "ok")], "the edge reports its attempts to the home region");
    }
}

async fn overhead_excludes_the_providers_time(host: Host) {
    let g = Gateway::start(host, "deployments:\n  - { name: d, provider: openai, model: \"slow@latency=300\" }\nmodels:\n  - { name: m, deployments: [d] }\n").await;
    let t0 = Instant::now();
    let (status, h, _) = g.chat_json(json!({"model": "m", "messages": user("hi")})).await;
    let elapsed_ms = t0.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 200);
    let overhead: f64 = header(&h, "x-meridian-overhead-ms").parse().expect("a number");
    assert!(elapsed_ms >= 300.0);
    assert!((0.0..150.0).contains(&overhead), "the provider's 300 ms are not overhead: {overhead} ms of {elapsed_ms:.0} ms");
}

async fn client_disconnect_cancels_the_upstream_request(host: Host) {
    let g = Gateway::start(host, "deployments:\n  - { name: d, provider: openai, model: \"slowstream@tps=20,tokens=200\" }\nmodels:\n  - { name: m, deployments: [d] }\n").await;
    let mut r = g.chat(json!({"model": "m", "stream": true, "messages": user("hi")})).await;
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "), "first chunk arrives before the provider finishes");
    drop(r);
    let a = g.attempts_until("slowstream", |a| a.first().is_some_and(|a| !a["ended"].is_null())).await;
    assert_eq!(a[0]["ended"], "client_gone", "the provider saw its connection closed long before the 10 s answer ended: {a:?}");
}

async fn a_keyless_provider_needs_no_key(host: Host) {
    // `vllm` names an env var that is never set, `vllm-nokey` none at all: both start.
    let g = Gateway::start(host, "deployments:\n  - { name: a, provider: vllm, model: \"llama-a@no_auth\" }\n  - { name: b, provider: vllm-nokey, model: \"llama-b@no_auth\" }\nmodels:\n  - { name: a, deployments: [a] }\n  - { name: b, deployments: [b] }\n").await;
    for m in ["a", "b"] {
        let (status, _, body) = g.chat_json(json!({"model": m, "messages": user("hi")})).await;
        assert_eq!(status, 200, "{body}");
        let a = g.attempts(&format!("llama-{m}")).await;
        assert_eq!(a[0]["credential"], false, "no key was sent");
    }
}
