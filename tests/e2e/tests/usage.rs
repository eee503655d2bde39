//! Usage reports from the rollups: events of the regional host and of the edge, grouped
//! by day, model, feature and user, per tenant only; bad queries named.

use std::time::Duration;

use meridian_e2e::*;
use serde_json::{json, Value};

const MODELS: &str = "deployments:\n  - { name: a, provider: openai, model: gpt-a, price: { input: 1.0, output: 2.0 } }\n  - { name: b, provider: openai, model: gpt-b }\nmodels:\n  - { name: ma, deployments: [a] }\n  - { name: mb, deployments: [b] }\n";

async fn summary(http: &reqwest::Client, base: &str, key: &str, query: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/v1/admin/usage/summary?{query}")).bearer_auth(key).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Polls (bounded) until the summary counts `requests` in total.
async fn until_total(http: &reqwest::Client, base: &str, key: &str, query: &str, requests: i64) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (_, v) = summary(http, base, key, query).await;
        if v["data"].as_array().is_some_and(|d| d.iter().map(|r| r["requests"].as_i64().unwrap_or(0)).sum::<i64>() == requests) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the summary did not reach {requests} requests: {last}");
}

#[tokio::test]
async fn summaries_group_the_tenants_usage_and_only_its_own() {
    let data = DataServices::start("eu").await;
    let mut setup = Setup::models(&format!("{MODELS}{}", data.yaml("")));
    setup.env = data.env();
    let s = Stack::start(setup).await;
    for (model, feature) in [("ma", "support"), ("ma", "support"), ("mb", "drafts")] {
        let r = s.http.post(s.url("/v1/chat/completions")).bearer_auth(&s.key).header("x-meridian-feature", feature).json(&json!({"model": model, "messages": user("hi")})).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let by_feature = until_total(&s.http, &s.gw.url, &s.key, "group_by=feature", 3).await;
    let rows: Vec<(String, i64)> = by_feature["data"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["requests"].as_i64().unwrap())).collect();
    assert_eq!(rows, vec![("support".to_string(), 2), ("drafts".to_string(), 1)], "by cost, most first: {by_feature}");
    assert!(by_feature["data"][0]["cost_usd"].as_f64().unwrap() > 0.0 && by_feature["data"][1]["cost_usd"].as_f64().unwrap() == 0.0);
    let (_, by_model) = summary(&s.http, &s.gw.url, &s.key, "group_by=model").await;
    let models: Vec<&str> = by_model["data"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(models.len(), 2, "{by_model}");
    let (_, by_day) = summary(&s.http, &s.gw.url, &s.key, "group_by=day").await;
    assert_eq!(by_day["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_day["data"][0]["requests"], 3);
    let (_, by_user) = summary(&s.http, &s.gw.url, &s.key, "group_by=user").await;
    assert_eq!(by_user["data"][0]["key"], "k1");
    // Another tenant of the region sees none of it.
    let (status, other) = summary(&s.http, &s.gw.url, &s.key2, "group_by=feature").await;
    assert_eq!((status, other["data"].clone()), (200, json!([])));
    // Bad queries are named.
    for (q, param) in [("limit=0", Some("limit")), ("start_time=100&end_time=50", Some("from")), ("start_time=0&end_time=99999999", Some("from"))] {
        let (status, e) = summary(&s.http, &s.gw.url, &s.key, q).await;
        assert_eq!((status, e["error"]["param"].as_str()), (400, param), "{q}: {e}");
    }
    let (status, e) = summary(&s.http, &s.gw.url, &s.key, "group_by=planet").await;
    assert_eq!(status, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("group_by") || e["error"]["message"].as_str().unwrap().contains("planet"), "{e}");
}

#[tokio::test]
async fn the_edges_usage_lands_in_the_home_regions_rollups() {
    let data = DataServices::start("eu").await;
    let s = EdgeStack::start(EdgeSetup::models("deployments:\n  - { name: d, provider: openai, model: gpt-x }\nmodels:\n  - { name: m, deployments: [d] }\n").with_eu_data(&data)).await;
    for _ in 0..2 {
        assert_eq!(s.chat(&s.key_eu, json!({"model": "m", "messages": user("hi")})).await.status(), 200);
    }
    let v = until_total(&s.http, &s.edge.url, &s.key_eu, "group_by=model", 2).await;
    assert_eq!(v["data"][0]["key"], "gpt-x");
}
