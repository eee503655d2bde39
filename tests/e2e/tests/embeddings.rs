//! The in-process MiniLM embedder against an independent NumPy reference
//! (tests/fixtures/embeddings/minilm_reference.py), and its Redis cache on a real Redis.

use std::sync::Arc;
use std::time::Duration;

use meridian_e2e::{models_dir, Redis};
use meridian_regional::embed::cache::{connect, CachedEmbedder};
use meridian_regional::embed::minilm::MiniLm;
use meridian_regional::embed::{cosine, Embed};

fn model() -> MiniLm {
    MiniLm::load(&models_dir().join("all-minilm-l6-v2")).expect("scripts/test installs the model (ensure_models)")
}

fn reference() -> Vec<(String, Vec<f32>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/embeddings/minilm_reference.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["text"].as_str().unwrap().to_string(), c["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()))
        .collect()
}

#[test]
fn matches_the_reference_implementation_in_one_batch_and_alone() {
    let m = model();
    let cases = reference();
    let texts: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    // One padded batch of very different lengths (incl. one past the 256-token limit).
    let batch = m.embed(&texts).unwrap();
    for ((text, want), got) in cases.iter().zip(&batch) {
        assert_eq!(got.len(), 384);
        let c = cosine(want, got);
        assert!(c > 0.9999, "cosine {c} for {text:?}");
        let alone = &m.embed(&[text.as_str()]).unwrap()[0];
        assert!(cosine(alone, got) > 0.99999, "padding changes the vector of {text:?}");
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    // And it means something: the paraphrase is nearer than the unrelated sentence.
    let v = m.embed(&["How can I change my password?"]).unwrap();
    assert!(cosine(&v[0], &batch[0]) > cosine(&v[0], &batch[1]) + 0.3);
}

#[tokio::test]
async fn redis_cache_serves_repeats_and_is_scoped_by_tenant() {
    let redis = Redis::start();
    let client = connect(&redis.url(), Duration::from_secs(2)).await.unwrap();
    let emb = CachedEmbedder::new(Arc::new(model()), Some(client), "eu", Duration::from_secs(3600));
    let texts = vec!["refund policy".to_string(), "shipping times".to_string()];
    let (first, s1) = emb.embed("acme", &texts).await.unwrap();
    assert_eq!((s1.hits, s1.misses), (0, 2));
    let (again, s2) = emb.embed("acme", &texts).await.unwrap();
    assert_eq!((s2.hits, s2.misses), (2, 0));
    assert_eq!(first, again, "cached vectors are bit-identical");
    let (_, s3) = emb.embed("globex", &texts).await.unwrap();
    assert_eq!((s3.hits, s3.misses), (0, 2), "another tenant never reads acme's entries");
    let ttl = redis.cli(&["TTL", &format!("meridian:eu:emb:acme:all-minilm-l6-v2:{}", sha_hex("refund policy"))]);
    let ttl: i64 = ttl.trim().parse().unwrap();
    assert!(ttl > 3500 && ttl <= 3600, "TTL set: {ttl}");
}

#[tokio::test]
async fn redis_down_degrades_to_computing() {
    let redis = Redis::start();
    let client = connect(&redis.url(), Duration::from_millis(300)).await.unwrap();
    let emb = CachedEmbedder::new(Arc::new(model()), Some(client), "eu", Duration::from_secs(60));
    drop(redis);
    let (v, s) = emb.embed("acme", &["still works".to_string()]).await.unwrap();
    assert_eq!((v.len(), s.misses), (1, 1));
}

fn sha_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}
