//! The in-process embedders against their references — MiniLM against an independent
//! NumPy transcription of BERT (tests/fixtures/embeddings/minilm_reference.py), E5 against
//! its package's own binding (e5_reference.py) plus cross-language checks of the model —
//! and the Redis cache in front of them on a real Redis.

use std::sync::Arc;
use std::time::Duration;

use meridian_e2e::{models_dir, Redis};
use meridian_regional::embed::cache::{connect, CachedEmbedder};
use meridian_regional::embed::e5::E5;
use meridian_regional::embed::minilm::MiniLm;
use meridian_regional::embed::models::Models;
use meridian_regional::embed::{cosine, Embed, Role};
use meridian_regional::rag::chunk::{chunk, ChunkSettings, Tokenize};
use meridian_shared::config::EmbeddingModel;

fn model() -> MiniLm {
    MiniLm::load(&models_dir().join("all-minilm-l6-v2")).expect("scripts/test installs the model (ensure_models)")
}

fn e5() -> E5 {
    E5::load(&models_dir().join("multilingual-e5-small")).expect("scripts/test installs the model (ensure_models)")
}

fn minilm_models() -> Models {
    Models::one(EmbeddingModel::AllMiniLmL6V2, Arc::new(model()))
}

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/../fixtures/embeddings/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn reference() -> Vec<(String, Vec<f32>)> {
    let v = fixture("minilm_reference.json");
    v["cases"].as_array().unwrap().iter().map(|c| (c["text"].as_str().unwrap().to_string(), c["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())).collect()
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

const MINILM: EmbeddingModel = EmbeddingModel::AllMiniLmL6V2;

#[test]
fn e5_matches_its_reference_as_query_and_passage() {
    let m = e5();
    let v = fixture("e5_reference.json");
    for role in ["query", "passage"] {
        let cases: Vec<(&str, Vec<f32>)> = v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["role"] == role)
            .map(|c| (c["text"].as_str().unwrap(), c["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()))
            .collect();
        let texts: Vec<&str> = cases.iter().map(|c| c.0).collect();
        let got = m.embed_as(&texts, if role == "query" { Role::Query } else { Role::Passage }).unwrap();
        for ((text, want), got) in cases.iter().zip(&got) {
            assert_eq!(got.len(), 384);
            let c = cosine(want, got);
            assert!(c > 0.9999, "{role} cosine {c} for {:?}", &text[..text.len().min(40)]);
        }
    }
    // Roles differ: the same text as a query and as a passage are not the same vector.
    let q = m.embed_as(&["How do I reset my password?"], Role::Query).unwrap();
    let p = m.embed_as(&["How do I reset my password?"], Role::Passage).unwrap();
    assert!(cosine(&q[0], &p[0]) < 0.999);
}

/// Why a tenant serving other languages gets E5: the same question in five languages is
/// nearer to its English form than a different English question is — which MiniLM
/// (English only) gets wrong.
#[test]
fn e5_puts_one_question_in_many_languages_together_and_minilm_does_not() {
    let same = [
        "How do I reset my password?",
        "Wie setze ich mein Passwort zurück?",
        "Comment réinitialiser mon mot de passe ?",
        "¿Cómo restablezco mi contraseña?",
        "パスワードをリセットするにはどうすればよいですか？",
    ];
    let other = "How long does shipping to Canada take?";
    let mut texts: Vec<&str> = same.to_vec();
    texts.push(other);
    let worst_same = |m: &dyn Embed| {
        let v = m.embed_as(&texts, Role::Query).unwrap();
        let near = (1..same.len()).map(|i| cosine(&v[0], &v[i])).fold(f32::MAX, f32::min);
        (near, cosine(&v[0], &v[same.len()]))
    };
    let (e5_same, e5_other) = worst_same(&e5());
    assert!(e5_same > e5_other, "E5: every translation ({e5_same}) nearer than another question ({e5_other})");
    let (mini_same, mini_other) = worst_same(&model());
    assert!(mini_same < mini_other, "MiniLM does not ({mini_same} vs {mini_other}), which is why it is English-only");
}

/// The chunker counts E5's own tokens: a German text cut at 40 tokens makes chunks the
/// engine counts as at most 40 tokens.
#[test]
fn e5_chunks_hold_to_its_token_budget() {
    let m = e5();
    let text = "Die Rückerstattung erfolgt innerhalb von vierzehn Tagen nach Eingang der Rücksendung, abzüglich der Versandkosten. ".repeat(20);
    let spans = m.token_spans("Rückerstattung erfolgt");
    assert_eq!(spans.len(), m.count_tokens("Rückerstattung erfolgt"), "one span per token");
    let chunks = chunk(&text, &m, ChunkSettings { max_tokens: 40, overlap_tokens: 5 });
    assert!(chunks.len() >= 10, "{} chunks", chunks.len());
    for c in &chunks {
        let n = m.count_tokens(&c.text);
        assert!(n <= 42, "chunk of {n} tokens: {:?}", c.text);
    }
}

#[tokio::test]
async fn redis_cache_serves_repeats_and_is_scoped_by_tenant() {
    let redis = Redis::start();
    let client = connect(&redis.url(), Duration::from_secs(2)).await.unwrap();
    let emb = CachedEmbedder::new(minilm_models(), Some(client), "eu", Duration::from_secs(3600));
    let texts = vec!["refund policy".to_string(), "shipping times".to_string()];
    let (first, s1) = emb.embed("acme", MINILM, Role::Passage, &texts).await.unwrap();
    assert_eq!((s1.hits, s1.misses), (0, 2));
    let (again, s2) = emb.embed("acme", MINILM, Role::Passage, &texts).await.unwrap();
    assert_eq!((s2.hits, s2.misses), (2, 0));
    assert_eq!(first, again, "cached vectors are bit-identical");
    let (_, s3) = emb.embed("globex", MINILM, Role::Passage, &texts).await.unwrap();
    assert_eq!((s3.hits, s3.misses), (0, 2), "another tenant never reads acme's entries");
    let (_, s4) = emb.embed("acme", MINILM, Role::Query, &texts).await.unwrap();
    assert_eq!((s4.hits, s4.misses), (0, 2), "queries and passages are cached apart");
    let err = emb.embed("acme", EmbeddingModel::MultilingualE5Small, Role::Passage, &texts).await.unwrap_err();
    assert!(err.to_string().contains("not loaded"), "{err}");
    let ttl = redis.cli(&["TTL", &format!("meridian:eu:emb:acme:all-minilm-l6-v2:p:{}", sha_hex("refund policy"))]);
    let ttl: i64 = ttl.trim().parse().unwrap();
    assert!(ttl > 3500 && ttl <= 3600, "TTL set: {ttl}");
}

#[tokio::test]
async fn redis_down_degrades_to_computing() {
    let redis = Redis::start();
    let client = connect(&redis.url(), Duration::from_millis(300)).await.unwrap();
    let emb = CachedEmbedder::new(minilm_models(), Some(client), "eu", Duration::from_secs(60));
    drop(redis);
    let (v, s) = emb.embed("acme", MINILM, Role::Passage, &["still works".to_string()]).await.unwrap();
    assert_eq!((v.len(), s.misses), (1, 1));
}

fn sha_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}
