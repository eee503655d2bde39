//! The drivers against scripted upstreams, with a fake clock: what the client receives
//! for every way an attempt can end, and what the breakers and the log record.

use super::*;
use crate::api::{ChatRequest, Message, Role};
use crate::config::Config;
use crate::failover::{ErrorClass, UpstreamError};
use crate::pricing::PriceTable;
use crate::routing::Router;

const CONFIG: &str = r#"
providers:
  - { name: oa, kind: openai, base_url: "http://oa/v1", api_key_env: K }
  - { name: an, kind: anthropic, base_url: "http://an", api_key_env: K }
deployments:
  - { name: primary, provider: oa, model: gpt-4o }
  - { name: restarts, provider: oa, model: gpt-4o-mini }
  - { name: prefills, provider: an, model: claude-sonnet-4-5 }
  - { name: refuses, provider: an, model: claude-opus-4-6 }
models:
  - { name: plain, deployments: [primary, restarts] }
  - { name: capable, deployments: [primary, prefills] }
  - { name: refusing, deployments: [primary, refuses] }
  - { name: refusing-then-capable, deployments: [primary, refuses, prefills] }
ROUTES
"#;

const WORDS: [&str; 12] = ["The", " answer", " is", " forty", " two,", " as", " every", " reader", " of", " the", " guide", " knows."];

fn router(routes: &str) -> (Config, Router) {
    let c = Config::from_yaml(&CONFIG.replace("ROUTES", routes)).unwrap();
    let r = Router::from_config(&c, |_| Some("k".into())).unwrap();
    (c, r)
}

fn req() -> ChatRequest {
    ChatRequest { model: "m".into(), messages: vec![Message::text(Role::User, "q")], stream: Some(true), ..Default::default() }
}

fn openai_sse(tokens: &[&str], finish: bool) -> Vec<u8> {
    let mut s = String::new();
    for t in tokens {
        s.push_str(&format!("data: {{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n", serde_json::to_string(t).unwrap()));
    }
    if finish {
        s.push_str("data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    }
    s.into_bytes()
}

fn anthropic_sse(tokens: &[&str]) -> Vec<u8> {
    let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for t in tokens {
        s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":{}}}}}\n\n", serde_json::to_string(t).unwrap()));
    }
    s.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s.into_bytes()
}

/// What one upstream attempt does.
enum Upstream {
    Refuse(u16, &'static str),
    /// Answers 200, then sends nothing until the driver's timer fires.
    Silent,
    /// Streams these bytes, then the body ends (`cut`: the connection breaks instead).
    Body { bytes: Vec<u8>, cut: bool },
}

struct Run {
    client: String,
    done: bool,
    error: Option<String>,
    finished: Option<Finished>,
    gave_up: Option<UpstreamError>,
    sent: Vec<(usize, String)>,
}

fn drive(model: &str, routes: &str, script: Vec<Upstream>) -> (Run, Router) {
    drive_yaml(&CONFIG.replace("ROUTES", routes), model, script)
}

fn drive_yaml(yaml: &str, model: &str, mut script: Vec<Upstream>) -> (Run, Router) {
    let c = Config::from_yaml(yaml).unwrap();
    let r = Router::from_config(&c, |_| Some("k".into())).unwrap();
    let prices = PriceTable::default();
    let run = {
        let m = &r.models[model];
        let mut s = Stream::new(Context::new(&c, &r, &prices, m), req(), m, None, "id".into(), false, Start { now_ms: 1_000, seed: 7 });
        script.reverse();
        let mut now = 1_000;
        let mut out = Vec::new();
        let mut sent = Vec::new();
        let (finished, gave_up) = loop {
            match s.next(now) {
                StreamStep::Wait(ms) => now += ms,
                StreamStep::Send(o) => {
                    sent.push((o.turn.deployment, String::from_utf8(o.request.body.clone()).unwrap()));
                    match script.pop().expect("an upstream for every attempt") {
                        Upstream::Refuse(status, body) => s.on_refused(status, &[], body.as_bytes(), now),
                        Upstream::Silent => {
                            s.on_open(now);
                            now += s.read_within_ms(now);
                            assert_eq!(s.on_timeout(now, &mut out), Read::Over);
                        }
                        Upstream::Body { bytes, cut } => {
                            s.on_open(now);
                            let mut over = false;
                            for piece in bytes.chunks(40) {
                                now += 1;
                                if s.on_bytes(piece, now, &mut out) == Read::Over {
                                    over = true;
                                    break;
                                }
                            }
                            if !over {
                                if cut {
                                    s.on_transport_error("connection reset", false, now, &mut out);
                                } else {
                                    s.on_eof(now, &mut out);
                                }
                            }
                        }
                    }
                }
                StreamStep::Done(f) => {
                    s.close(&f, &mut out);
                    break (Some(f), None);
                }
                StreamStep::GiveUp(e) => {
                    if s.committed() {
                        out.push(crate::relay::StreamRelay::error_frame(&e));
                    }
                    break (s.interrupted(), Some(e));
                }
            }
        };
        let raw: String = out.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        let mut client = String::new();
        let mut error = None;
        for line in raw.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if line == "[DONE]" {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(e) = v.get("error") {
                error = Some(e["message"].as_str().unwrap().to_string());
            }
            for ch in v["choices"].as_array().into_iter().flatten() {
                client.push_str(ch["delta"]["content"].as_str().unwrap_or(""));
            }
        }
        Run { client, done: raw.contains("data: [DONE]"), error, finished, gave_up, sent }
    };
    (run, r)
}

fn full() -> String {
    WORDS.concat()
}

#[test]
fn a_clean_answer_is_delivered_once_with_its_metadata() {
    let (run, r) = drive("plain", "", vec![Upstream::Body { bytes: openai_sse(&WORDS, true), cut: false }]);
    assert_eq!(run.client, full());
    assert!(run.done && run.error.is_none());
    let f = run.finished.unwrap();
    assert_eq!((f.deployment, f.continued, f.interrupted), (0, None, false));
    assert_eq!(r.health.state(0), crate::breaker::BreakerState::Closed { failures: 0 });
}

#[test]
fn failures_before_the_first_output_fail_over_invisibly() {
    let (run, _) = drive("plain", "", vec![Upstream::Refuse(503, "{}"), Upstream::Body { bytes: openai_sse(&WORDS, true), cut: false }]);
    assert_eq!(run.client, full());
    assert!(run.done);
    assert_eq!(run.sent.iter().map(|s| s.0).collect::<Vec<_>>(), vec![0, 1]);
}

#[test]
fn a_break_after_output_with_no_capable_target_ends_with_an_in_band_error() {
    let (run, _) = drive("plain", "", vec![Upstream::Body { bytes: openai_sse(&WORDS[..4], false), cut: true }]);
    assert_eq!(run.client, WORDS[..4].concat(), "the partial answer");
    assert!(!run.done, "no terminator");
    assert!(run.error.unwrap().contains("connection reset"));
    assert_eq!(run.sent.len(), 1, "gpt-4o-mini cannot take a prefill: no continuation");
    let f = run.finished.expect("the interrupted answer is accounted for");
    assert!(f.interrupted);
    assert_eq!((f.deployment, f.usage.completion_tokens), (0, 4));
}

#[test]
fn an_instruction_continuation_that_restarts_is_discarded() {
    let routes = "routes:\n  default:\n    retry: { continue_broken_streams: instruction }\n";
    let (run, _) = drive("plain", routes, vec![Upstream::Body { bytes: openai_sse(&WORDS[..4], false), cut: true }, Upstream::Body { bytes: openai_sse(&WORDS, true), cut: false }]);
    assert_eq!(run.client, WORDS[..4].concat(), "nothing of the restarted answer reached the client");
    assert!(!run.done);
    let e = run.error.unwrap();
    assert!(e.contains("connection reset") && e.contains("restarts the answer"), "{e}");
    assert!(run.sent[1].1.contains(CONTINUE_INSTRUCTION));
}

#[test]
fn an_instruction_continuation_that_fits_is_used_and_marked() {
    let routes = "routes:\n  default:\n    retry: { continue_broken_streams: instruction }\n";
    let (run, _) = drive("plain", routes, vec![Upstream::Body { bytes: openai_sse(&WORDS[..4], false), cut: true }, Upstream::Body { bytes: openai_sse(&WORDS[4..], true), cut: false }]);
    assert_eq!(run.client, full());
    assert!(run.done && run.error.is_none());
    assert_eq!(run.finished.unwrap().continued, Some(Continuation::Instruction));
}

#[test]
fn a_prefill_capable_fallback_continues_exactly_once() {
    let (run, _) = drive("capable", "", vec![Upstream::Body { bytes: openai_sse(&WORDS[..5], false), cut: true }, Upstream::Body { bytes: anthropic_sse(&WORDS[5..]), cut: false }]);
    assert_eq!(run.client, full(), "the exact answer, once");
    assert!(run.done && run.error.is_none());
    let f = run.finished.unwrap();
    assert_eq!((f.deployment, f.continued), (2, Some(Continuation::Prefill)));
    assert_eq!(f.usage.completion_tokens, 5 + 9, "both attempts' output is billed: 5 chunks delivered by the first, 9 by the continuation's count");
    let body: serde_json::Value = serde_json::from_str(&run.sent[1].1).unwrap();
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["role"].as_str(), last["content"][0]["text"].as_str()), (Some("assistant"), Some(WORDS[..5].concat().trim_end())), "the partial answer as a prefill: {body}");
}

#[test]
fn a_prefill_that_restarts_or_repeats_is_discarded() {
    let (run, _) = drive("capable", "", vec![Upstream::Body { bytes: openai_sse(&WORDS[..8], false), cut: true }, Upstream::Body { bytes: anthropic_sse(&WORDS), cut: false }]);
    assert_eq!(run.client, WORDS[..8].concat());
    assert!(!run.done && run.error.unwrap().contains("restarts the answer"));
    let echo = [" as", " every", " reader", " of", " the", " guide", " knows."];
    let (run, _) = drive("capable", "", vec![Upstream::Body { bytes: openai_sse(&WORDS[..8], false), cut: true }, Upstream::Body { bytes: anthropic_sse(&echo), cut: false }]);
    assert!(!run.done && run.error.unwrap().contains("repeats the end"));
}

#[test]
fn a_refused_prefill_reports_the_original_failure() {
    let refusal = r#"{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill. The conversation must end with a user message."}}"#;
    // claude-opus-4-6 is known not to accept a prefill: it is never asked.
    let (run, _) = drive("refusing", "", vec![Upstream::Body { bytes: openai_sse(&WORDS[..4], false), cut: true }]);
    assert_eq!(run.sent.len(), 1);
    assert!(run.error.unwrap().contains("connection reset"));
    // Declared capable but refusing: the next capable target, else the original failure.
    let (run, _) = drive_declared(refusal);
    assert_eq!(run.client, full(), "the 400 closed that target; the next capable one continued");
    let (run, _) = drive_declared_only(refusal);
    let e = run.gave_up.unwrap();
    assert_eq!(e.class, ErrorClass::StreamBroken { tokens_sent: 4 });
    assert!(e.message.contains("connection reset") && !e.message.contains("prefill"), "the original failure, never the 400: {}", e.message);
}

fn declared(models: &str) -> String {
    CONFIG.replace("ROUTES", "").replace("model: claude-opus-4-6 }", "model: claude-opus-4-6, prefill: true }").replace("  - { name: refusing-then-capable, deployments: [primary, refuses, prefills] }", models)
}

fn drive_declared(refusal: &'static str) -> (Run, Router) {
    let yaml = declared("  - { name: refusing-then-capable, deployments: [primary, refuses, prefills] }");
    drive_yaml(&yaml, "refusing-then-capable", vec![Upstream::Body { bytes: openai_sse(&WORDS[..4], false), cut: true }, Upstream::Refuse(400, refusal), Upstream::Body { bytes: anthropic_sse(&WORDS[4..]), cut: false }])
}

fn drive_declared_only(refusal: &'static str) -> (Run, Router) {
    drive_yaml(&declared(""), "refusing", vec![Upstream::Body { bytes: openai_sse(&WORDS[..4], false), cut: true }, Upstream::Refuse(400, refusal)])
}

#[test]
fn tool_output_is_never_continued() {
    let tool = b"data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]},\"finish_reason\":null}]}\n\n".to_vec();
    let (run, _) = drive("capable", "", vec![Upstream::Body { bytes: tool, cut: true }]);
    assert_eq!(run.sent.len(), 1, "no continuation after tool output");
    assert!(!run.done && run.error.is_some());
}

#[test]
fn a_silent_continuation_target_is_not_asked_again() {
    let (run, r) = drive("capable", "", vec![Upstream::Body { bytes: openai_sse(&WORDS[..4], false), cut: true }, Upstream::Silent]);
    assert_eq!(run.sent.len(), 2, "the silent target was closed (timeout), not retried");
    assert!(!run.done && run.error.unwrap().contains("connection reset"), "the original break is reported");
    assert_eq!(r.health.state(2).as_str(), "closed", "one timeout does not open its breaker");
}

#[test]
fn a_dropped_driver_frees_its_probe() {
    let routes = "breaker: { failure_threshold: 1, cooldown_ms: 1000, max_cooldown_ms: 1000 }\n";
    let (c, r) = router(routes);
    let prices = PriceTable::default();
    let m = &r.models["plain"];
    r.health.failure(0, ErrorClass::Transient, 0);
    let chat = ChatRequest { stream: None, ..req() };
    let mut d = Complete::new(Context::new(&c, &r, &prices, m), ChatCall(&chat), m, None, Start { now_ms: 1_500, seed: 1 });
    assert!(matches!(d.next(1_500), Step::Send(o) if o.turn.deployment == 0));
    assert_eq!(r.health.state(0).as_str(), "half_open", "the probe is taken");
    drop(d);
    assert!(r.health.available(0, 1_501), "a cancelled request gives its probe back at once");
}

#[test]
fn continue_off_never_continues() {
    let routes = "routes:\n  default:\n    retry: { continue_broken_streams: false }\n";
    let (run, _) = drive("capable", routes, vec![Upstream::Body { bytes: openai_sse(&WORDS[..4], false), cut: true }]);
    assert_eq!(run.sent.len(), 1);
    assert!(!run.done);
}

#[test]
fn an_open_breaker_is_skipped_and_logged_and_a_stream_heals_it_at_its_first_token() {
    let routes = "breaker: { failure_threshold: 1, cooldown_ms: 1000, max_cooldown_ms: 1000 }\n";
    let (c, r) = router(routes);
    let prices = PriceTable::default();
    let m = &r.models["plain"];
    r.health.failure(0, ErrorClass::Transient, 0);
    let mut s = Stream::new(Context::new(&c, &r, &prices, m), req(), m, None, "id".into(), false, Start { now_ms: 10, seed: 3 });
    let StreamStep::Send(o) = s.next(10) else { panic!() };
    assert_eq!(o.turn.deployment, 1, "the open breaker's deployment went last");
    // After the cooldown the primary is probed; its first token closes the breaker.
    let mut s = Stream::new(Context::new(&c, &r, &prices, m), req(), m, None, "id".into(), false, Start { now_ms: 1_500, seed: 3 });
    let StreamStep::Send(o) = s.next(1_500) else { panic!() };
    assert_eq!(o.turn.deployment, 0);
    assert_eq!(r.health.state(0).as_str(), "half_open");
    s.on_open(1_501);
    let mut out = Vec::new();
    assert_eq!(s.on_bytes(&openai_sse(&WORDS[..1], false), 1_502, &mut out), Read::More);
    assert_eq!(r.health.state(0).as_str(), "closed", "healthy at the first token, not at the end");
    let _ = s.attempts().take_events();
}

#[test]
fn complete_fails_over_bills_the_answering_deployment_and_logs_every_attempt() {
    let (c, r) = router("");
    let prices = PriceTable::default();
    let m = &r.models["plain"];
    let chat = ChatRequest { stream: None, ..req() };
    let mut d = Complete::new(Context::new(&c, &r, &prices, m), ChatCall(&chat), m, None, Start { now_ms: 0, seed: 9 });
    let mut now = 0;
    let answer = loop {
        match d.next(now) {
            Step::Wait(ms) => now += ms,
            Step::Send(o) if o.turn.deployment == 0 => d.on_response(500, &[], br#"{"error":{"message":"boom","type":"server_error"}}"#, now),
            Step::Send(_) => {
                now += 3;
                d.on_response(200, &[], br#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000000,"completion_tokens":0,"total_tokens":1000000}}"#, now);
            }
            Step::Done(a) => break a,
            Step::GiveUp(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(answer.deployment, 1);
    assert_eq!(answer.cost_usd, prices.lookup("gpt-4o-mini-2024-07-18").map(|p| p.cost(&crate::api::Usage::new(1_000_000, 0))));
    let log = d.attempts().take_events();
    assert_eq!(log.iter().map(|e| (e.deployment.as_str(), e.outcome.as_str())).collect::<Vec<_>>(), vec![("primary", "transient"), ("restarts", "ok")]);
    assert_eq!(log[1].latency_ms, 3);
}

#[test]
fn complete_timeouts_name_their_phase() {
    let routes = "routes:\n  default:\n    timeouts: { response_ms: 500, total_ms: 800 }\n";
    let (c, r) = router(routes);
    let prices = PriceTable::default();
    let m = &r.models["plain"];
    let chat = ChatRequest { stream: None, ..req() };
    let mut d = Complete::new(Context::new(&c, &r, &prices, m), ChatCall(&chat), m, None, Start { now_ms: 0, seed: 9 });
    let Step::Send(o) = d.next(0) else { panic!() };
    assert_eq!(o.within_ms, 500, "response_ms bounds a non-streamed answer");
    d.on_timeout(false, 500);
    let Step::Send(o) = d.next(500) else { panic!() };
    assert_eq!((o.turn.deployment, o.within_ms), (1, 300), "cut to what is left of total_ms");
    d.on_timeout(true, 800);
    let Step::GiveUp(e) = d.next(800) else { panic!() };
    assert_eq!(e.class, ErrorClass::Timeout(crate::failover::TimeoutKind::Total));
}

/// Weighted routing, deterministic: 10,000 requests with fixed seeds over two equal
/// weights whose latencies are known (2 ms vs 40 ms). Power of two choices makes the fast
/// one the head unless both draws pick the slow one: 3/4. A coin flip or round robin (1/2)
/// and "always the fastest" (1) are far outside the bound.
#[test]
fn weighted_routing_is_power_of_two_choices_on_latency() {
    let yaml = "providers:\n  - { name: oa, kind: openai, base_url: \"http://oa/v1\", api_key_env: K }\ndeployments:\n  - { name: fast, provider: oa, model: a }\n  - { name: slow, provider: oa, model: b }\nmodels:\n  - { name: m, deployments: [fast, slow], strategy: weighted }\n";
    let c = Config::from_yaml(yaml).unwrap();
    let r = Router::from_config(&c, |_| Some("k".into())).unwrap();
    r.health.success(0, 2.0);
    r.health.success(1, 40.0);
    let prices = PriceTable::default();
    let m = &r.models["m"];
    let chat = ChatRequest { stream: None, ..req() };
    let n = 10_000;
    let fast = (0..n)
        .filter(|&seed| {
            let mut d = Complete::new(Context::new(&c, &r, &prices, m), ChatCall(&chat), m, None, Start { now_ms: 0, seed });
            matches!(d.next(0), Step::Send(o) if o.turn.deployment == 0)
        })
        .count();
    let share = fast as f64 / n as f64;
    assert!((0.73..0.77).contains(&share), "fast deployment first in {share:.3} of requests");
}
