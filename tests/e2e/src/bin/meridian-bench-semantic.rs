//! Semantic-cache evaluation and lookup latency (run by `scripts/bench-semantic`).
//!
//! 1. For every pair of the evaluation set (scripts/bench.d/semantic_pairs.py), the two
//!    questions' cosine similarity under both local models (as the cache embeds them:
//!    role "query"), whether the scope's language detection puts them in the same
//!    scope, and what the guard says. The report turns these into hit and false-hit
//!    rates per threshold.
//! 2. The regions' lookup latency (pgvector, RLS, sealed entries) with 10k and 100k
//!    entries in one tenant's scope, and the embedding time of one question.
//!
//! Usage: meridian-bench-semantic PAIRS.jsonl [VECTORS.f32]; prints one JSON object.

use std::time::Instant;

use meridian_e2e::{models_dir, tenant_database, Postgres};
use meridian_regional::embed::e5::E5;
use meridian_regional::embed::minilm::MiniLm;
use meridian_regional::embed::{cosine, Embed, Role};
use meridian_regional::rag::retrieve::vector_literal;
use meridian_regional::semantic_cache::SemanticCache;
use meridian_shared::cache::semantic::{detect_language, guard, Miss};
use meridian_shared::cache::CachedAnswer;
use serde_json::{json, Value};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    (v[i] * 1000.0).round() / 1000.0
}

fn summary(mut v: Vec<f64>) -> Value {
    json!({"n": v.len(), "p50_ms": pct(&mut v, 0.5), "p95_ms": pct(&mut v, 0.95), "p99_ms": pct(&mut v, 0.99)})
}

fn embed_all(m: &dyn Embed, texts: &[&str]) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(256) {
        out.extend(m.embed_as(batch, Role::Query).expect("embeds"));
    }
    out
}

fn guard_label(r: Result<(), Miss>) -> &'static str {
    match r {
        Ok(()) => "pass",
        Err(Miss::Negation) => "negation",
        Err(Miss::Numbers) => "numbers",
        Err(Miss::Entities) => "entities",
        Err(Miss::BelowThreshold) => "below",
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pairs: Vec<Value> =
        std::fs::read_to_string(args.get(1).expect("usage: meridian-bench-semantic PAIRS.jsonl [VECTORS.f32]")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut texts: Vec<&str> = pairs.iter().flat_map(|p| [p["a"].as_str().unwrap(), p["b"].as_str().unwrap()]).collect();
    texts.sort_unstable();
    texts.dedup();
    let index = |t: &str| texts.binary_search(&t).unwrap();

    let minilm = MiniLm::load(&models_dir().join("all-minilm-l6-v2")).expect("MiniLM (scripts/bench-semantic installs it)");
    let e5 = E5::load(&models_dir().join("multilingual-e5-small")).expect("E5 (scripts/bench-semantic installs it)");
    let t = Instant::now();
    let v_minilm = embed_all(&minilm, &texts);
    let minilm_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v_e5 = embed_all(&e5, &texts);
    let e5_s = t.elapsed().as_secs_f64();
    let rows: Vec<Value> = pairs
        .iter()
        .map(|p| {
            let (a, b) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
            let (i, j) = (index(a), index(b));
            json!([
                p["kind"],
                p["should_hit"],
                (cosine(&v_minilm[i], &v_minilm[j]) * 10000.0).round() / 10000.0,
                (cosine(&v_e5[i], &v_e5[j]) * 10000.0).round() / 10000.0,
                detect_language(a) == detect_language(b),
                guard_label(guard(a, b)),
            ])
        })
        .collect();

    // One question embedded alone (what a lookup pays before it reaches the store).
    let (mut single_minilm, mut single_e5) = (Vec::new(), Vec::new());
    for q in texts.iter().take(200) {
        let t = Instant::now();
        minilm.embed_as(&[q], Role::Query).unwrap();
        single_minilm.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        e5.embed_as(&[q], Role::Query).unwrap();
        single_e5.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(e5);

    // The regional store: one tenant, one scope (the worst case: every entry is a
    // candidate), entries with real MiniLM vectors when a vectors file is given.
    let pg = Postgres::start();
    let (db, _, key) = tenant_database(&pg, "bench", "bench").await;
    let stored: Vec<Vec<f32>> = match args.get(2) {
        Some(path) => std::fs::read(path).unwrap().chunks_exact(384 * 4).take(100_000).map(|c| c.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()).collect(),
        None => (0..100_000).map(|i| v_minilm[i % v_minilm.len()].iter().enumerate().map(|(d, x)| x + ((i * 31 + d * 17) % 97) as f32 * 1e-3).collect()).collect(),
    };
    let answer = serde_json::to_vec(&serde_json::json!({"response": {"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": "A cached answer of ordinary length, a sentence or two."}, "finish_reason": "stop"}]}, "stored_at": 1})).unwrap();
    let _: CachedAnswer = serde_json::from_slice(&answer).unwrap();
    let scope = "bench-scope";
    let cache = SemanticCache { db: &db, threshold: 0.92, guard: true, ttl_s: 3600 };
    let admin = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{}/bench", pg.port)).await.unwrap();
    let mut latency = serde_json::Map::new();
    let mut loaded = 0usize;
    for target in [10_000usize, 100_000] {
        let t = Instant::now();
        while loaded < target.min(stored.len()) {
            let end = (loaded + 1000).min(target).min(stored.len());
            let q_enc: Vec<Vec<u8>> = (loaded..end).map(|i| key.seal(format!("semcache:q:{scope}").as_bytes(), format!("cached question {i}").as_bytes())).collect();
            let a_enc: Vec<Vec<u8>> = (loaded..end).map(|_| key.seal(format!("semcache:a:{scope}").as_bytes(), &answer)).collect();
            let vecs: Vec<String> = stored[loaded..end].iter().map(|v| vector_literal(v)).collect();
            let mut tx = db.tenant_tx("bench").await.unwrap();
            sqlx::query(
                "INSERT INTO semantic_cache (tenant_id, scope, question_enc, answer_enc, embedding, expires_at)
                 SELECT 'bench', $1, q, a, v::vector, now() + interval '1 day' FROM unnest($2::bytea[], $3::bytea[], $4::text[]) AS u(q, a, v)",
            )
            .bind(scope)
            .bind(&q_enc)
            .bind(&a_enc)
            .bind(&vecs)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
            loaded = end;
        }
        let load_s = t.elapsed().as_secs_f64();
        // Statistics as autovacuum would keep them (stale ones make the planner ignore
        // the HNSW index).
        sqlx::raw_sql("ANALYZE semantic_cache").execute(&admin).await.unwrap();
        let mut lat = Vec::new();
        for (i, q) in texts.iter().take(300).enumerate() {
            let t = Instant::now();
            cache.lookup("bench", &key, scope, q, &v_minilm[i]).await.unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        latency.insert(format!("entries_{loaded}"), json!({"load_s": (load_s * 10.0).round() / 10.0, "lookup": summary(lat)}));
    }

    println!(
        "{}",
        json!({
            "texts": texts.len(),
            "embed_s": {"minilm": (minilm_s * 10.0).round() / 10.0, "e5": (e5_s * 10.0).round() / 10.0},
            "single_question_embed": {"minilm": summary(single_minilm), "e5": summary(single_e5)},
            "columns": ["kind", "should_hit", "cos_minilm", "cos_e5", "same_language", "guard"],
            "pairs": rows,
            "regional_lookup": latency,
        })
    );
}
