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

#[tokio::test]
async fn jwt_algorithms_are_accepted_and_every_forgery_refused() {
    let s = stack("ok").await;
    let claims = EdgeStack::claims("tenant-eu", &["admin"]);
    let body = json!({"model": "m", "messages": user("hi")});
    for (name, token) in [("HS256", s.idp.sign_hs256(&claims)), ("RS256", s.idp.sign("rsa-1", &claims)), ("ES256", s.idp.sign("ec-1", &claims)), ("EdDSA", s.idp.sign("ed-1", &claims))] {
        let r = s.chat(&token, json!({"model": "m", "messages": user(name)})).await;
        assert_eq!(r.status(), 200, "{name}: {}", r.text().await.unwrap());
    }
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let mut expired = claims.clone();
    expired["exp"] = json!(expired["iat"].as_u64().unwrap() - 60);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.test");
    let mut unknown_tenant = claims.clone();
    unknown_tenant["tenant"] = json!("nobody");
    let cases = [
        ("alg none", format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims)), "alg \"none\""),
        ("algorithm confusion", s.idp.forge_confused(&claims), "invalid token"),
        ("expired", s.idp.sign("rsa-1", &expired), "expired"),
        ("wrong audience", s.idp.sign("ec-1", &wrong_aud), "audience"),
        ("wrong issuer", s.idp.sign("ed-1", &wrong_iss), "issuer"),
        ("unknown tenant", s.idp.sign("rsa-1", &unknown_tenant), "unknown tenant"),
        ("malformed", "eyJhbGciOiJSUzI1NiJ9.not-base64!.x".to_string(), "malformed"),
        (
            "tampered",
            {
                let t = s.idp.sign("rsa-1", &claims);
                let mut p: Vec<&str> = t.split('.').collect();
                let forged = b64(&EdgeStack::claims("tenant-b", &["admin"]));
                p[1] = &forged;
                p.join(".")
            },
            "signature",
        ),
    ];
    for (name, token, needle) in cases {
        let (status, err) = error_of(s.chat(&token, body.clone()).await).await;
        assert_eq!(status, 401, "{name}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(needle), "{name}: {err}");
    }
    assert_eq!(s.attempts("ok").await.len(), 4, "only the four valid tokens reached a provider");
}

#[tokio::test]
async fn jwks_rotation_unknown_kid_then_new_key_accepted() {
    let mut s = stack("ok").await;
    let claims = EdgeStack::claims("tenant-eu", &["admin"]);
    let body = json!({"model": "m", "messages": user("hi")});
    assert_eq!(s.chat(&s.idp.sign("rsa-1", &claims), body.clone()).await.status(), 200);
    // A new key the IdP has not published yet: unknown kid.
    s.idp.add_key("rsa-2", jsonwebtoken::Algorithm::RS256);
    s.idp.publish_except(&["rsa-2"]);
    let (status, err) = error_of(s.chat(&s.idp.sign("rsa-2", &claims), body.clone()).await).await;
    assert_eq!(status, 401);
    assert!(err["error"]["message"].as_str().unwrap().contains("kid"), "{err}");
    // Published: the edge refetches the JWKS on the unknown kid (after its 10 s floor).
    s.idp.publish();
    let mut ok = false;
    for _ in 0..130 {
        if s.chat(&s.idp.sign("rsa-2", &claims), body.clone()).await.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "rotated key accepted after the JWKS refresh");
}

#[tokio::test]
async fn roles_restrict_models_and_routes() {
    let s = stack("ok").await;
    let r = s.chat(&s.key_chat_only, json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(error_of(r).await.0, 403);
    let r = s.chat(&s.key_chat_only, json!({"model": "small", "messages": user("hi")})).await;
    assert_eq!(r.status(), 200);
    let r = s.get("/v1/admin/usage", &s.key_chat_only).await;
    assert_eq!(error_of(r).await.0, 403, "admin route not granted");
    let jwt = s.idp.sign("ec-1", &EdgeStack::claims("tenant-eu", &["chat-small"]));
    assert_eq!(error_of(s.chat(&jwt, json!({"model": "m", "messages": user("hi")})).await).await.0, 403);
    let models: Value = s.get("/v1/models", &jwt).await.json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["small"]);
}

#[tokio::test]
async fn a_concurrent_burst_admits_exactly_the_limit() {
    let s = EdgeStack::start(EdgeSetup::models(&MODELS.replace("PRIMARY", "ok")).limited("{ requests_per_minute: 5 }")).await;
    let reqs = (0..20).map(|_| s.chat(&s.key_limited, json!({"model": "small", "messages": user("hi")})));
    let responses = futures_util::future::join_all(reqs).await;
    let mut ok = 0;
    for r in responses {
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert!(header(r.headers(), "retry-after").parse::<u64>().unwrap() >= 1);
                assert_eq!(header(r.headers(), "x-ratelimit-limit-requests"), "5");
                assert_eq!(header(r.headers(), "x-ratelimit-remaining-requests"), "0");
                let (_, e) = error_of(r).await;
                assert_eq!(e["error"]["type"], "rate_limit_error");
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!(ok, 5, "exactly the limit is admitted");
    assert_eq!(s.attempts("gpt-small").await.len(), 5);
}

#[tokio::test]
async fn tokens_are_reserved_then_reconciled_with_real_usage() {
    let s = EdgeStack::start(EdgeSetup::models(&MODELS.replace("PRIMARY", "ok")).limited("{ tokens_per_minute: 100 }")).await;
    // Distinct prompts, so no answer comes from the cache.
    let body = |i: u32| json!({"model": "small", "messages": user(&format!("hi {i}")), "max_tokens": 80});
    // Each reserves ~81 (prompt estimate + cap); real use is 15 (3 prompt + 12 completion):
    // settled, so the second fits where two reservations would not.
    for i in 0..2 {
        let r = s.chat(&s.key_limited, body(i)).await;
        assert_eq!(r.status(), 200, "request {i}: {}", r.text().await.unwrap());
    }
    let (status, err) = error_of(s.chat(&s.key_limited, body(2)).await).await;
    assert_eq!(status, 429, "15 + 15 + 81 > 100: {err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("tokens per minute"));
}

#[tokio::test]
async fn monthly_budget_is_reserved_and_settled() {
    let models = "deployments:\n  - { name: pricey, provider: openai, model: gpt-pricey, price: { input: 1000.0, output: 1000.0 } }\nmodels:\n  - { name: pricey, deployments: [pricey] }\n";
    // Estimate per call: (1 + 5) tokens at $1000/M = $0.006; real: 15 tokens = $0.015.
    let s = EdgeStack::start(EdgeSetup::models(models).limited("{ monthly_budget_usd: 0.025 }")).await;
    let body = |i: u32| json!({"model": "pricey", "messages": user(&format!("hi {i}")), "max_tokens": 5});
    for i in 0..2 {
        let r = s.chat(&s.key_limited, body(i)).await;
        assert_eq!(r.status(), 200, "request {i}");
    }
    // Spent $0.030 > $0.025: refused, though the estimate alone would have fitted.
    let (status, err) = error_of(s.chat(&s.key_limited, body(2)).await).await;
    assert_eq!(status, 429, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("monthly budget"), "{err}");
}

#[tokio::test]
async fn exact_cache_is_tenant_scoped_and_replays_streams() {
    let s = stack("ok").await;
    let body = json!({"model": "small", "messages": user("cache me"), "temperature": 0});
    let first = s.chat(&s.key_eu, body.clone()).await;
    assert_eq!(header(first.headers(), "x-meridian-cache"), "miss");
    let first: Value = first.json().await.unwrap();
    // The answer is stored before the response completes: the next request hits.
    let r = s.chat(&s.key_eu, body.clone()).await;
    assert!(header(r.headers(), "x-meridian-cache").starts_with("exact"), "second identical request is a cache hit");
    let hit: Value = r.json().await.unwrap();
    assert_eq!(hit["choices"][0]["message"]["content"], first["choices"][0]["message"]["content"]);
    let calls = s.attempts("gpt-small").await.len();
    // Streamed replay of the same entry.
    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let sse = read_sse(s.chat(&s.key_eu, sbody).await).await;
    assert!(header(&sse.headers, "x-meridian-cache").starts_with("exact"));
    assert!(sse.done);
    assert_eq!(sse.text(), first["choices"][0]["message"]["content"].as_str().unwrap());
    assert_eq!(s.attempts("gpt-small").await.len(), calls, "hits never call the provider");
    // Tenant B never gets tenant A's entry.
    let b = s.chat(&s.key_b, body.clone()).await;
    assert_eq!(header(b.headers(), "x-meridian-cache"), "miss");
    assert_eq!(s.attempts("gpt-small").await.len(), calls + 1);
    // Bypass and a changed parameter both miss.
    let r = s.http.post(s.url("/v1/chat/completions")).bearer_auth(&s.key_eu).header("x-meridian-cache", "bypass").json(&body).send().await.unwrap();
    assert_eq!(header(r.headers(), "x-meridian-cache"), "bypass");
    let mut other = body.clone();
    other["temperature"] = json!(0.5);
    assert_eq!(header(s.chat(&s.key_eu, other).await.headers(), "x-meridian-cache"), "miss");
    assert_eq!(s.attempts("gpt-small").await.len(), calls + 3);
    // A streamed answer is cached too, and replayed as SSE.
    let q = json!({"model": "small", "stream": true, "messages": user("stream me")});
    let live = read_sse(s.chat(&s.key_eu, q.clone()).await).await;
    assert_eq!(header(&live.headers, "x-meridian-cache"), "miss");
    let replayed = read_sse(s.chat(&s.key_eu, q).await).await;
    assert!(header(&replayed.headers, "x-meridian-cache").starts_with("exact"));
    assert_eq!(replayed.text(), live.text());
    assert!(replayed.done);
}

#[tokio::test]
async fn sse_streams_chunk_by_chunk_and_fails_over_before_the_first_token() {
    let s = stack("early@cut=0").await;
    let sse = read_sse(s.chat(&s.key_eu, json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": user("q")})).await).await;
    assert_eq!(sse.status, 200);
    assert!(sse.done && sse.error().is_none(), "{}", sse.raw);
    assert_eq!(header(&sse.headers, "x-meridian-deployment"), "backup");
    assert_eq!(sse.text(), mock_answer_at(&s.mock.url, "q").await);
    assert!(sse.usage().is_some());
    // A provider that never finishes: chunks still arrive (nothing is buffered to the end).
    let s = stack("forever@stall=3").await;
    let mut r = s.chat(&s.key_eu, json!({"model": "m", "stream": true, "messages": user("q")})).await;
    let mut got = String::new();
    while !got.contains("Mock") {
        let c = r.chunk().await.unwrap().expect("a chunk before the provider finishes");
        got.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(got.starts_with("data: "));
}

// Failover, continuation and breaker scenarios run on the edge too: tests/failover.rs.

#[tokio::test]
async fn regional_work_goes_to_the_home_region_only() {
    let mut s = stack("ok").await;
    let eu: Value = s.get("/v1/admin/usage", &s.key_eu).await.json().await.unwrap();
    assert_eq!(eu["region"], "eu");
    assert_eq!(eu["tenant"], "tenant-eu");
    let us: Value = s.get("/v1/admin/usage", &s.key_us).await.json().await.unwrap();
    assert_eq!(us["region"], "us");
    assert_eq!(us["tenant"], "tenant-us");
    // The US region goes down: US tenants get a clear 503, never the EU backend.
    s.us = None;
    let (status, err) = error_of(s.get("/v1/admin/usage", &s.key_us).await).await;
    assert_eq!(status, 503, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("never sent to another region"));
    assert!(!s.eu.logs().contains("tenant-us"), "the EU backend never saw the US tenant");
    // EU tenants are unaffected.
    assert_eq!(s.get("/v1/admin/usage", &s.key_eu).await.status(), 200);
}

#[tokio::test]
async fn usage_events_reach_the_tenants_home_region_without_delaying_the_answer() {
    let s = stack("ok").await;
    let r =
        s.http.post(s.url("/v1/chat/completions")).bearer_auth(&s.key_eu).header("x-meridian-feature", "onboarding-bot").json(&json!({"model": "small", "messages": user("hi")})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report = s.usage_events(&s.key_eu, 1).await;
    let e = &report["events"][0];
    assert_eq!(e["tenant"], "tenant-eu");
    assert_eq!(e["feature"], "onboarding-bot");
    assert_eq!(e["via"], "edge");
    assert_eq!(e["deployment"], "small");
    assert_eq!(e["model"], "gpt-small");
    assert!(e["completion_tokens"].as_u64().unwrap() > 0);
    assert!(e["latency_ms"].as_f64().unwrap() >= 0.0);
    // A US tenant's usage lands in the US region, not in the EU one.
    let r = s.chat(&s.key_us, json!({"model": "small", "messages": user("hi")})).await;
    assert_eq!(r.status(), 200);
    let us = s.usage_events(&s.key_us, 1).await;
    assert_eq!(us["region"], "us");
    assert_eq!(us["events"][0]["tenant"], "tenant-us");
    let eu = s.usage_events(&s.key_eu, 1).await;
    assert!(eu["events"].as_array().unwrap().iter().all(|e| e["tenant"] == "tenant-eu"));
}

#[tokio::test]
async fn bad_input_at_the_edge() {
    let s = EdgeStack::start(EdgeSetup::models(&format!("limits: {{ max_body_bytes: 20000 }}\n{}", MODELS.replace("PRIMARY", "ok")))).await;
    let r = s.http.post(s.url("/v1/chat/completions")).json(&json!({"model": "m", "messages": user("hi")})).send().await.unwrap();
    assert_eq!(error_of(r).await.0, 401);
    let r = s.http.post(s.url("/v1/chat/completions")).bearer_auth(&s.key_eu).header("content-type", "application/json").body("{nope").send().await.unwrap();
    assert_eq!(error_of(r).await.0, 400);
    let r = s.chat(&s.key_eu, json!({"model": "nope", "messages": user("hi")})).await;
    assert_eq!(error_of(r).await.0, 404);
    let r = s.chat(&s.key_eu, json!({"model": "m", "messages": user(&"x".repeat(30_000))})).await;
    assert_eq!(error_of(r).await.0, 413);
    let r = s.get("/v1/unknown", &s.key_eu).await;
    assert_eq!(error_of(r).await.0, 404);
    assert!(s.attempts("").await.is_empty());
}

#[tokio::test]
async fn a_chatbot_is_built_and_used_through_the_edge_in_the_home_region() {
    let data = DataServices::start("eu").await;
    let s = EdgeStack::start(EdgeSetup::models(&MODELS.replace("PRIMARY", "ok")).with_eu_data(&data)).await;
    let json_of = |r: reqwest::Response| async move {
        let st = r.status().as_u16();
        let t = r.text().await.unwrap();
        (st, serde_json::from_str::<Value>(&t).unwrap_or_else(|_| panic!("not JSON ({st}): {t}")))
    };
    let (st, kb) = json_of(s.post("/v1/knowledge-bases", &s.key_eu, &json!({"name": "help"})).await).await;
    assert_eq!(st, 201, "{kb}");
    let kb = kb["id"].as_str().unwrap().to_string();
    let doc = "## Opening hours\n\nThe Lisbon store opens at 10 am and closes at 7 pm, Monday to Saturday.\n";
    let up = s.http.post(s.url(&format!("/v1/knowledge-bases/{kb}/documents"))).bearer_auth(&s.key_eu).header("content-type", "text/markdown").body(doc).send().await.unwrap();
    let (st, up) = json_of(up).await;
    assert_eq!(st, 201, "{up}");
    let (st, bot) = json_of(s.post("/v1/chatbots", &s.key_eu, &json!({"name": "store", "knowledge_base_id": kb, "model": "small"})).await).await;
    assert_eq!(st, 201, "{bot}");
    let bot = bot["id"].as_str().unwrap().to_string();
    let q = |stream: bool| json!({"stream": stream, "messages": [{"role": "user", "content": "When does the Lisbon store open?"}]});
    let (st, v) = json_of(s.post(&format!("/v1/chatbots/{bot}/chat"), &s.key_eu, &q(false)).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["citations"][0]["document_id"], up["document"]["id"]);
    let sse = read_sse(s.post(&format!("/v1/chatbots/{bot}/chat"), &s.key_eu, &q(true)).await).await;
    assert_eq!(sse.status, 200, "{}", sse.raw);
    assert_eq!(sse.events[0]["citations"][0]["document_id"], up["document"]["id"]);
    assert!(sse.done && !sse.text().is_empty(), "{}", sse.raw);
    // The US tenant's requests go to the US region, which holds none of this.
    let (st, _) = json_of(s.post(&format!("/v1/chatbots/{bot}/chat"), &s.key_us, &q(false)).await).await;
    assert_ne!(st, 200);
    // Another EU tenant reaches the EU region but not tenant-eu's chatbot.
    let (st, _) = json_of(s.post(&format!("/v1/chatbots/{bot}/chat"), &s.key_b, &q(false)).await).await;
    assert_eq!(st, 404);
    assert!(!s.eu.logs().contains("tenant-us"), "the EU backend never saw the US tenant");
}

#[tokio::test]
async fn media_jobs_run_in_the_home_region_through_the_edge() {
    let data = DataServices::start("eu").await;
    let mut setup = EdgeSetup::models(&MODELS.replace("PRIMARY", "ok")).with_eu_data(&data);
    // Media only in the EU region, with a worker inside its backend.
    setup.eu_extra.0.push_str(
        "media:\n  deployments:\n    - { name: img, provider: openai, base_url: \"{mock}/v1\", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: gpt-image-1, kind: image }\n    - { name: vid, provider: runway, base_url: \"{mock}\", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: gen4_turbo, kind: video }\n  models:\n    - { name: image, kind: image, deployments: [img] }\n    - { name: video, kind: video, deployments: [vid] }\n  queue: { in_process_workers: 1, poll_interval_ms: 50 }\n",
    );
    let s = EdgeStack::start(setup).await;
    // Synchronous image: OpenAI's shape, a presigned URL to the EU object store.
    let r = s.post("/v1/images/generations", &s.key_eu, &json!({"model": "image", "prompt": "A lighthouse", "size": "256x256"})).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    let png = s.http.get(v["data"][0]["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Asynchronous video: 202, then the job through the edge, with Idempotency-Key forwarded.
    let submit = || s.http.post(s.url("/v1/videos/generations")).bearer_auth(&s.key_eu).header("idempotency-key", "clip-1").json(&json!({"model": "video", "prompt": "Waves"})).send();
    let first: Value = submit().await.unwrap().json().await.unwrap();
    let again = submit().await.unwrap();
    assert_eq!(header(again.headers(), "idempotent-replayed"), "true");
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id.as_str());
    let mut job = Value::Null;
    for _ in 0..200 {
        job = s.get(&format!("/v1/jobs/{id}"), &s.key_eu).await.json().await.unwrap();
        if job["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["outputs"][0]["content_type"], "video/mp4");
    // The job event stream over WebSocket, relayed by the edge from the home region.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(s.url("/v1/jobs/stream").replace("http://", "ws://")).unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", s.key_eu).parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("the edge upgrades");
    let r = s.post("/v1/images/generations", &s.key_eu, &json!({"model": "image", "prompt": "A kite", "size": "256x256", "async": true})).await;
    let kite = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let mut kinds = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(std::time::Duration::from_secs(30), futures_util::StreamExt::next(&mut ws)).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let e: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(e["tenant"], "tenant-eu", "only the caller's tenant's events");
            if e["job_id"] == kite.as_str() {
                kinds.push(e["type"].as_str().unwrap().to_string());
                if e["type"] == "job.succeeded" {
                    break;
                }
            }
        }
    }
    assert_eq!(kinds, ["job.queued", "job.started", "job.succeeded"]);

    // Another tenant of the region cannot see it; a US tenant's media request goes to the
    // US region (which runs no media here) and never to the EU.
    assert_eq!(s.get(&format!("/v1/jobs/{id}"), &s.key_b).await.status(), 404);
    let r = s.post("/v1/images/generations", &s.key_us, &json!({"model": "image", "prompt": "x"})).await;
    assert_eq!(r.status(), 503, "the US region has no media generation configured");
    let listed: Value = s.get("/v1/jobs", &s.key_eu).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 3, "only tenant-eu's three jobs: {listed}");
}

#[tokio::test]
async fn both_hosts_list_the_same_models_for_a_role() {
    let s = stack("ok").await;
    let ids = |v: &Value| v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    for (key, expected) in [(&s.key_chat_only, vec!["small"]), (&s.key_eu, vec!["m", "small"])] {
        let at_edge: Value = s.get("/v1/models", key).await.json().await.unwrap();
        let at_region: Value = s.http.get(format!("{}/v1/models", s.eu.url)).bearer_auth(key).send().await.unwrap().json().await.unwrap();
        assert_eq!(ids(&at_edge), expected, "the role's model grants filter the list");
        assert_eq!(at_edge, at_region, "the edge and the region give the same answer");
    }
}

#[tokio::test]
async fn a_jwt_gets_the_same_answer_from_the_edge_and_from_its_region() {
    let s = stack("ok").await;
    let claims = EdgeStack::claims("tenant-eu", &["admin"]);
    let mut expired = claims.clone();
    expired["exp"] = json!(expired["iat"].as_u64().unwrap() - 60);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let us_tenant = EdgeStack::claims("tenant-us", &["admin"]);
    let cases = [
        ("HS256", s.idp.sign_hs256(&claims), 200),
        ("RS256", s.idp.sign("rsa-1", &claims), 200),
        ("ES256", s.idp.sign("ec-1", &claims), 200),
        ("EdDSA", s.idp.sign("ed-1", &claims), 200),
        ("expired", s.idp.sign("rsa-1", &expired), 401),
        ("wrong audience", s.idp.sign("ec-1", &wrong_aud), 401),
        ("algorithm confusion", s.idp.forge_confused(&claims), 401),
    ];
    for (name, token, status) in cases {
        let body = json!({"model": "m", "messages": user(name)});
        let at_edge = s.chat(&token, body.clone()).await.status().as_u16();
        let at_region = s.http.post(format!("{}/v1/chat/completions", s.eu.url)).bearer_auth(&token).json(&body).send().await.unwrap().status().as_u16();
        assert_eq!((at_edge, at_region), (status, status), "{name}: the edge and the region apply one policy");
    }
    // A US tenant's valid token: the edge routes it to the US region; the EU region refuses it.
    let token = s.idp.sign("rsa-1", &us_tenant);
    let r = s.http.post(format!("{}/v1/chat/completions", s.eu.url)).bearer_auth(&token).json(&json!({"model": "m", "messages": user("x")})).send().await.unwrap();
    assert_eq!(r.status(), 403);
}
