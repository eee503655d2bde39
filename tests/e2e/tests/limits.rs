//! Tenant limits and budgets on the regional host, held by every replica together: two
//! regional processes on one PostgreSQL and one Redis, requests spread over both.

use std::time::Duration;

use meridian_e2e::*;
use serde_json::json;

/// Mock + two replicas of the EU backend sharing their data plane (Redis holds the limits).
async fn replicas(limits: &str, model: &str) -> (Stack, Proc, DataServices) {
    let data = DataServices::start("eu").await;
    let models = format!("deployments:\n  - {{ name: d, provider: openai, model: \"{model}\", price: {{ input: 8000.0, output: 8000.0 }} }}\nmodels:\n  - {{ name: m, deployments: [d] }}\n");
    let mut setup = Setup::models(&format!("{models}{}", data.yaml("")));
    setup.env = data.env();
    setup.tenant_eu_extra = format!(", limits: {limits}");
    let s = Stack::start(setup).await;
    let b = s.replica();
    (s, b, data)
}

async fn ask(s: &Stack, base: &str, max_tokens: u32) -> reqwest::Response {
    s.http.post(format!("{base}/v1/chat/completions")).bearer_auth(&s.key).json(&json!({"model": "m", "max_tokens": max_tokens, "messages": user("hi")})).send().await.unwrap()
}

#[tokio::test]
async fn two_replicas_admit_exactly_the_limit_between_them() {
    let (s, b, _data) = replicas("{ requests_per_minute: 5 }", "gpt-x").await;
    let bases = [s.gw.url.clone(), b.url.clone()];
    let calls = (0..20).map(|i| {
        let (s, base) = (&s, bases[i % 2].clone());
        async move { ask(s, &base, 16).await }
    });
    let responses = futures_util::future::join_all(calls).await;
    let ok = responses.iter().filter(|r| r.status() == 200).count();
    let limited: Vec<_> = responses.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((ok, limited.len()), (5, 15), "exactly the limit, not twice it");
    assert!(limited.iter().all(|r| r.headers().contains_key("retry-after") && header(r.headers(), "x-ratelimit-limit-requests") == "5"));
    assert!(responses.iter().filter(|r| r.status() == 200).all(|r| header(r.headers(), "x-ratelimit-limit-requests") == "5"), "the tenant's limit is the one reported");
}

#[tokio::test]
async fn a_budget_reserved_in_one_replica_is_seen_by_the_other() {
    // 101 tokens estimated at $8,000 per million: $0.81 reserved against a $1 budget.
    let (s, b, _data) = replicas("{ monthly_budget_usd: 1.0 }", "slow@latency=1500").await;
    let a = tokio::spawn({
        let (http, url, key) = (s.http.clone(), s.gw.url.clone(), s.key.clone());
        async move { http.post(format!("{url}/v1/chat/completions")).bearer_auth(key).json(&json!({"model": "m", "max_tokens": 100, "messages": user("hi")})).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = ask(&s, &b.url, 100).await;
    assert_eq!(r.status(), 429, "the other replica sees the reservation in flight");
    let text = r.text().await.unwrap();
    assert!(text.contains("budget"), "{text}");
    assert_eq!(a.await.unwrap(), 200);
    // Settled at its real (smaller) usage, the budget has room again — on both replicas.
    let r = ask(&s, &b.url, 10).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
