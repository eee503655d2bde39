//! The edge's semantic-cache latency (run by `scripts/bench-semantic`): the Worker in
//! real workerd, the EU backend with its data plane (it embeds the questions), the mock
//! provider. One tenant's `SemanticCache` object is filled to 10k and then 100k entries in
//! the probes' own scope (the worst case: every entry is a candidate), through
//! `/internal/semantic-cache/import`; then, sequentially:
//!
//! - hits: questions imported with their real vectors (embedded as another tenant, so
//!   the tenant's embedding cache is cold and every lookup pays a fresh embedding), asked
//!   once each: end to end at the client, and the `Server-Timing` parts (embed, object);
//! - misses: questions never seen (fresh embedding, lookup, then the mock provider).
//!
//! Fillers have pseudo-random unit vectors (nowhere near a probe) and a probe's question
//! text, so they share its language scope.
//!
//! Usage: meridian-bench-edge-semantic PAIRS.jsonl; prints one JSON object.

use std::time::Instant;

use meridian_e2e::{DataServices, EdgeSetup, EdgeStack, INTERNAL_SECRET};
use meridian_shared::cache::semantic::detect_language;
use serde_json::{json, Value};

const SYSTEM: &str = "You answer questions about our product briefly.";
const DIMS: usize = 384;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    (v[i] * 100.0).round() / 100.0
}

fn summary(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return json!({"n": 0});
    }
    json!({"n": v.len(), "p50_ms": pct(&mut v, 0.5), "p95_ms": pct(&mut v, 0.95), "p99_ms": pct(&mut v, 0.99)})
}

fn random_unit(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..DIMS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

fn request(q: &str) -> Value {
    json!({"model": "allowed", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]})
}

fn answer(text: &str) -> Value {
    json!({"id": "imported", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50}})
}

/// `Server-Timing: embed;dur=12, semantic;dur=3` → (12, 3).
fn timing(h: &reqwest::header::HeaderMap) -> Option<(f64, f64)> {
    let v = h.get("server-timing")?.to_str().ok()?;
    let dur = |name: &str| v.split(',').map(str::trim).find(|p| p.starts_with(&format!("{name};")))?.split("dur=").nth(1)?.parse::<f64>().ok();
    Some((dur("embed")?, dur("semantic")?))
}

async fn import(s: &EdgeStack, entries: Vec<Value>) -> u64 {
    let r = s.http.post(s.url("/internal/semantic-cache/import")).header("x-meridian-internal", INTERNAL_SECRET).json(&json!({"tenant": "tenant-eu", "entries": entries})).send().await.unwrap();
    let st = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(st, 200, "{v}");
    v["entries"].as_u64().unwrap()
}

#[tokio::main]
async fn main() {
    let path = std::env::args().nth(1).expect("usage: meridian-bench-edge-semantic PAIRS.jsonl");
    let mut texts: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|p| [p["a"].as_str().unwrap_or_default().to_string(), p["b"].as_str().unwrap_or_default().to_string()])
        .filter(|t| t.split_whitespace().count() >= 3 && detect_language(t) == "eng")
        .collect();
    texts.sort();
    texts.dedup();
    assert!(texts.len() >= 400, "too few English questions: {}", texts.len());
    // Spread the probes over the set (neighbouring messages are often near-duplicates).
    let step = texts.len() / 400;
    let probes: Vec<String> = (0..400).map(|i| texts[i * step].clone()).collect();
    let (hits, misses) = probes.split_at(200);

    let data = DataServices::start("eu").await;
    let models =
        "deployments:\n  - { name: oa, provider: openai, model: gpt-4o }\nmodels:\n  - { name: allowed, deployments: [oa] }\nsemantic_cache: { enabled: true, max_entries_per_tenant: 200000 }\n";
    let s = EdgeStack::start(EdgeSetup::models(models).with_eu_data(&data)).await;

    // The hit probes' vectors, embedded as tenant-b (tenant-eu's embedding cache stays cold).
    let mut vectors: Vec<Vec<f32>> = Vec::new();
    for batch in hits.chunks(16) {
        let r = s.http.post(format!("{}/internal/embed", s.eu.url)).header("x-meridian-internal", INTERNAL_SECRET).json(&json!({"tenant": "tenant-b", "texts": batch})).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        vectors.extend(serde_json::from_value::<Vec<Vec<f32>>>(v["vectors"].clone()).unwrap());
    }
    let entries: Vec<Value> = hits.iter().zip(&vectors).map(|(q, v)| json!({"request": request(q), "embedding": v, "answer": answer("An imported answer.")})).collect();
    let mut held = import(&s, entries).await;

    let mut out = serde_json::Map::new();
    let mut filler = 0u64;
    for (round, target) in [10_000u64, 100_000].into_iter().enumerate() {
        let t = Instant::now();
        while held < target {
            let n = (target - held).min(1000);
            let batch: Vec<Value> = (0..n)
                .map(|_| {
                    filler += 1;
                    json!({"request": request(&hits[(filler % 200) as usize]), "embedding": random_unit(filler), "answer": answer("A filler answer.")})
                })
                .collect();
            held = import(&s, batch).await;
        }
        let import_s = t.elapsed().as_secs_f64();
        let (mut e2e_hit, mut embed_hit, mut object_hit) = (Vec::new(), Vec::new(), Vec::new());
        let (mut e2e_miss, mut embed_miss, mut object_miss) = (Vec::new(), Vec::new(), Vec::new());
        // Hit probes served, and miss probes served (two different questions of the set).
        let (mut served, mut wrongly_served) = (0, 0);
        let half = |v: &[String]| v[round * 100..(round + 1) * 100].to_vec();
        for (is_hit, qs) in [(true, half(hits)), (false, half(misses))] {
            for q in qs {
                let t = Instant::now();
                let r = s.http.post(s.url("/v1/chat/completions")).bearer_auth(&s.key_eu).json(&request(&q)).send().await.unwrap();
                let h = r.headers().clone();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                let semantic = h.get("x-meridian-cache").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("semantic"));
                let Some((embed, object)) = timing(&h) else { continue };
                match (is_hit, semantic) {
                    (true, true) => {
                        served += 1;
                        e2e_hit.push(ms);
                        embed_hit.push(embed);
                        object_hit.push(object);
                    }
                    (false, false) => {
                        e2e_miss.push(ms);
                        embed_miss.push(embed);
                        object_miss.push(object);
                    }
                    (false, true) => wrongly_served += 1,
                    (true, false) => {}
                }
            }
        }
        let stats: Value =
            s.http.post(s.url("/internal/semantic-cache/stats")).header("x-meridian-internal", INTERNAL_SECRET).json(&json!({"tenant": "tenant-eu"})).send().await.unwrap().json().await.unwrap();
        out.insert(
            format!("entries_{target}"),
            json!({
                "import_s": (import_s * 10.0).round() / 10.0,
                "hit_probes": 100, "served": served, "miss_probes_served": wrongly_served,
                "hit": {"end_to_end": summary(e2e_hit), "embed": summary(embed_hit), "object": summary(object_hit)},
                "miss": {"end_to_end_with_mock_provider": summary(e2e_miss), "embed": summary(embed_miss), "object": summary(object_miss)},
                "object_stats": stats,
            }),
        );
    }
    println!("{}", Value::Object(out));
}
