//! The regions' semantic cache on real PostgreSQL + pgvector with real MiniLM vectors:
//! paraphrases hit, a negated question and another tenant never do, entries expire.

use meridian_e2e::{models_dir, Postgres};
use meridian_regional::crypto::Keyring;
use meridian_regional::db::Db;
use meridian_regional::embed::minilm::MiniLm;
use meridian_regional::embed::Embed;
use meridian_regional::semantic_cache::{Lookup, SemanticCache};
use meridian_shared::api::{ChatRequest, Message, Role};
use meridian_shared::cache::semantic::{scope, Miss};
use meridian_shared::cache::CachedAnswer;

fn ask(text: &str) -> ChatRequest {
    ChatRequest { model: "gpt-4o".into(), messages: vec![Message::text(Role::System, "Be brief."), Message::text(Role::User, text)], ..Default::default() }
}

fn answer(text: &str) -> CachedAnswer {
    let response = serde_json::from_value(serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    }))
    .unwrap();
    CachedAnswer { response, stored_at: 1 }
}

#[tokio::test]
async fn paraphrases_hit_negations_other_tenants_and_expired_entries_do_not() {
    let pg = Postgres::start();
    let db = Db::connect(&pg.app_database("meridian").await, 4).await.unwrap();
    db.migrate().await.unwrap();
    for t in ["a", "b"] {
        db.create_tenant(t, "eu").await.unwrap();
    }
    let keyring = Keyring::from_hex(&"11".repeat(32)).unwrap();
    let (ka, kb) = (db.data_key(&keyring, "a").await.unwrap(), db.data_key(&keyring, "b").await.unwrap());
    let model = MiniLm::load(&models_dir().join("all-minilm-l6-v2")).unwrap();
    let embed = |t: &str| model.embed(&[t]).unwrap().remove(0);
    let cache = SemanticCache { db: &db, threshold: 0.85, guard: true, ttl_s: 3600 };

    let (scope_a, q) = scope("a", &ask("How do I reset my password?")).unwrap();
    cache.store("a", &ka, &scope_a, &q, &embed(&q), &answer("Use the reset link.")).await.unwrap();

    // A paraphrase in the same scope is served, with its similarity.
    let (s, p) = scope("a", &ask("How can I reset my password?")).unwrap();
    assert_eq!(s, scope_a);
    match cache.lookup("a", &ka, &s, &p, &embed(&p)).await.unwrap() {
        Lookup::Hit { answer, similarity, .. } => {
            assert!(similarity > 0.85, "{similarity}");
            assert_eq!(answer.response.choices[0].message.content.as_deref(), Some("Use the reset link."));
        }
        miss => panic!("expected a hit: {miss:?}"),
    }
    // A negated question is close in vector space but never served.
    let (s, n) = scope("a", &ask("How do I not reset my password?")).unwrap();
    match cache.lookup("a", &ka, &s, &n, &embed(&n)).await.unwrap() {
        Lookup::Miss { nearest: Some(sim), reason } => assert!(reason == Some(Miss::Negation) || reason == Some(Miss::BelowThreshold), "{sim} {reason:?}"),
        other => panic!("a negation must miss: {other:?}"),
    }
    // Tenant B asking the very same question misses — even when it presents A's scope,
    // row-level security hides A's entries.
    let (scope_b, qb) = scope("b", &ask("How do I reset my password?")).unwrap();
    assert_ne!(scope_b, scope_a);
    assert_eq!(cache.lookup("b", &kb, &scope_b, &qb, &embed(&qb)).await.unwrap(), Lookup::Miss { nearest: None, reason: None });
    assert_eq!(cache.lookup("b", &kb, &scope_a, &qb, &embed(&qb)).await.unwrap(), Lookup::Miss { nearest: None, reason: None });
    // Expired entries are neither served nor kept.
    let short = SemanticCache { ttl_s: 0, ..cache };
    let (s2, q2) = scope("a", &ask("What are your opening hours?")).unwrap();
    short.store("a", &ka, &s2, &q2, &embed(&q2), &answer("9 to 5.")).await.unwrap();
    assert!(matches!(short.lookup("a", &ka, &s2, &q2, &embed(&q2)).await.unwrap(), Lookup::Miss { .. }));
    assert_eq!(short.purge_expired("a").await.unwrap(), 1);
}
