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
use meridian_shared::config::EmbeddingModel;

const MINILM: EmbeddingModel = EmbeddingModel::AllMiniLmL6V2;

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

    let (scope_a, q) = scope("a", &ask("How do I reset my password?"), MINILM).unwrap();
    cache.store("a", &ka, &scope_a, &q, &embed(&q), &answer("Use the reset link.")).await.unwrap();

    // A paraphrase in the same scope is served, with its similarity.
    let (s, p) = scope("a", &ask("How can I reset my password?"), MINILM).unwrap();
    assert_eq!(s, scope_a);
    match cache.lookup("a", &ka, &s, &p, &embed(&p)).await.unwrap() {
        Lookup::Hit { answer, similarity, .. } => {
            assert!(similarity > 0.85, "{similarity}");
            assert_eq!(answer.response.choices[0].message.content.as_deref(), Some("Use the reset link."));
        }
        miss => panic!("expected a hit: {miss:?}"),
    }
    // A negated question is close in vector space but never served.
    let (s, n) = scope("a", &ask("How do I not reset my password?"), MINILM).unwrap();
    match cache.lookup("a", &ka, &s, &n, &embed(&n)).await.unwrap() {
        Lookup::Miss { nearest: Some(sim), reason } => assert!(reason == Some(Miss::Negation) || reason == Some(Miss::BelowThreshold), "{sim} {reason:?}"),
        other => panic!("a negation must miss: {other:?}"),
    }
    // Tenant B asking the very same question misses — even when it presents A's scope,
    // row-level security hides A's entries.
    let (scope_b, qb) = scope("b", &ask("How do I reset my password?"), MINILM).unwrap();
    assert_ne!(scope_b, scope_a);
    assert_eq!(cache.lookup("b", &kb, &scope_b, &qb, &embed(&qb)).await.unwrap(), Lookup::Miss { nearest: None, reason: None });
    assert_eq!(cache.lookup("b", &kb, &scope_a, &qb, &embed(&qb)).await.unwrap(), Lookup::Miss { nearest: None, reason: None });
    // Expired entries are neither served nor kept.
    let short = SemanticCache { ttl_s: 0, ..cache };
    let (s2, q2) = scope("a", &ask("What are your opening hours?"), MINILM).unwrap();
    short.store("a", &ka, &s2, &q2, &embed(&q2), &answer("9 to 5.")).await.unwrap();
    assert!(matches!(short.lookup("a", &ka, &s2, &q2, &embed(&q2)).await.unwrap(), Lookup::Miss { .. }));
    assert_eq!(short.purge_expired("a").await.unwrap(), 1);

    // Bounded per tenant: past the cap the least recently used entries go, and only the
    // tenant's own.
    for i in 0..5 {
        let (s, q) = scope("a", &ask(&format!("Question number {i}?")), MINILM).unwrap();
        cache.store("a", &ka, &s, &q, &embed(&q), &answer("x")).await.unwrap();
    }
    cache.store("b", &kb, &scope_b, &qb, &embed(&qb), &answer("b's")).await.unwrap();
    // Serving the first (paraphrase) entry makes it the most recently used.
    assert!(matches!(cache.lookup("a", &ka, &scope_a, &p, &embed(&p)).await.unwrap(), Lookup::Hit { .. }));
    assert_eq!(cache.purge("a", 2).await.unwrap(), 4, "6 entries, cap 2");
    assert!(matches!(cache.lookup("a", &ka, &scope_a, &p, &embed(&p)).await.unwrap(), Lookup::Hit { .. }), "the recently served one stays");
    assert!(matches!(cache.lookup("b", &kb, &scope_b, &qb, &embed(&qb)).await.unwrap(), Lookup::Hit { .. }), "other tenants untouched");
}

/// GDPR: deleting a tenant purges its cached answers; shredding its key makes any left
/// unreadable (a miss, never an error or another tenant's answer).
#[tokio::test]
async fn tenant_deletion_and_key_shredding_purge_the_cache() {
    let pg = Postgres::start();
    let db = Db::connect(&pg.app_database("meridian").await, 4).await.unwrap();
    db.migrate().await.unwrap();
    let admin = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{}/meridian", pg.port)).await.unwrap();
    let count = |t: &'static str| {
        let admin = admin.clone();
        async move { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM semantic_cache WHERE tenant_id = $1").bind(t).fetch_one(&admin).await.unwrap() }
    };
    let keyring = Keyring::from_hex(&"22".repeat(32)).unwrap();
    let model = MiniLm::load(&models_dir().join("all-minilm-l6-v2")).unwrap();
    let cache = SemanticCache { db: &db, threshold: 0.85, guard: true, ttl_s: 3600 };
    let (sc, q) = scope("x", &ask("How do I reset my password?"), MINILM).unwrap();
    let v = model.embed(&[q.as_str()]).unwrap().remove(0);
    for t in ["gone", "shredded", "kept"] {
        db.create_tenant(t, "eu").await.unwrap();
        let k = db.data_key(&keyring, t).await.unwrap();
        cache.store(t, &k, &sc, &q, &v, &answer(t)).await.unwrap();
    }
    assert!(db.delete_tenant("gone").await.unwrap());
    assert_eq!(count("gone").await, 0, "deleted with the tenant");
    assert!(db.shred_tenant_key("shredded").await.unwrap());
    let fresh = db.data_key(&keyring, "shredded").await.unwrap();
    assert_eq!(cache.lookup("shredded", &fresh, &sc, &q, &v).await.unwrap(), Lookup::Miss { nearest: None, reason: None }, "unreadable: a miss");
    let kept = db.data_key(&keyring, "kept").await.unwrap();
    assert!(matches!(cache.lookup("kept", &kept, &sc, &q, &v).await.unwrap(), Lookup::Hit { .. }), "other tenants untouched");
    assert_eq!(count("kept").await, 1);
}

/// Asks `q` (after a fixed system prompt) at `url` with `key`, as JSON or a stream;
/// returns the `x-meridian-cache` header and the answer text. Both hosts' tests use it.
async fn ask_over_http(http: &reqwest::Client, url: String, key: &str, q: &str, stream: bool, extra: &[(&str, &str)]) -> (String, String) {
    use serde_json::{json, Value};
    let mut r = http.post(url).bearer_auth(key).json(&json!({"model": "allowed", "stream": stream, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}]}));
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cache = meridian_e2e::header(resp.headers(), "x-meridian-cache").to_string();
    if stream {
        let sse = meridian_e2e::read_sse(resp).await;
        assert!(sse.done, "{}", sse.raw);
        (cache, sse.text())
    } else {
        let v: Value = resp.json().await.unwrap();
        (cache, v["choices"][0]["message"]["content"].as_str().unwrap().to_string())
    }
}

mod over_http {
    //! The same cache on the regional request path, over real HTTP: a paraphrase is served
    //! from the cache (JSON and replayed SSE) without a provider call; a negated question,
    //! another tenant, and a bypass all go to the provider.
    use meridian_e2e::*;

    const MODELS: &str = r#"
deployments:
  - { name: oa, provider: openai, model: gpt-4o }
models:
  - { name: allowed, deployments: [oa] }
semantic_cache: { enabled: true }
"#;

    async fn ask(s: &Stack, key: &str, q: &str, stream: bool, extra: &[(&str, &str)]) -> (String, String) {
        super::ask_over_http(&s.http, s.url("/v1/chat/completions"), key, q, stream, extra).await
    }

    /// Waits (bounded) until `tenant` has `n` entries: the store runs after the answer.
    async fn stored(data: &DataServices, tenant: &str, n: i64) {
        let pool = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{}/meridian", data.pg.port)).await.unwrap();
        for _ in 0..200 {
            let have: i64 = sqlx::query_scalar("SELECT count(*) FROM semantic_cache WHERE tenant_id = $1").bind(tenant).fetch_one(&pool).await.unwrap();
            if have >= n {
                assert_eq!(have, n, "exactly {n} entries");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the answer was never stored");
    }

    #[tokio::test]
    async fn paraphrase_hits_negation_other_tenant_and_bypass_miss() {
        let data = DataServices::start("eu").await;
        let mut setup = Setup::models(&format!("{MODELS}{}", data.yaml("")));
        setup.env = data.env();
        let s = Stack::start(setup).await;
        let calls = || async { s.attempts("gpt-4o").await.len() };

        let (c, first) = ask(&s, &s.key, "How do I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 1);
        stored(&data, "tenant-eu", 1).await;

        let (c, again) = ask(&s, &s.key, "How can I reset my password?", false, &[]).await;
        assert!(c.starts_with("semantic; similarity=0.9"), "{c}");
        assert!(c.contains("; age="), "{c}");
        assert_eq!(again, first, "the cached answer");
        assert_eq!(calls().await, 1, "no provider call for a hit");

        // Replayed as SSE for a streaming request.
        let (c, streamed) = ask(&s, &s.key, "how can i reset my password", true, &[]).await;
        assert!(c.starts_with("semantic"), "{c}");
        assert_eq!(streamed, first);
        assert_eq!(calls().await, 1);

        // A request may demand more similarity than the paraphrase has.
        // (Its fresh answer is stored too: the nearest entry for this exact wording now.)
        let (c, strict) = ask(&s, &s.key, "How can I reset my password?", false, &[("x-meridian-semantic-threshold", "0.9999")]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 2);
        stored(&data, "tenant-eu", 2).await;

        // The negated question is close in vector space but must not be served.
        let (c, _) = ask(&s, &s.key, "Why can't I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 3);

        // Another tenant (same region, same embedding model, same request) asking the
        // very same question never gets tenant-eu's answer...
        let (c, other) = ask(&s, &s.key2, "How do I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 4);
        stored(&data, "tenant-eu2", 1).await;
        // ...and now that it has its own entry, each tenant is served its own.
        let (c, mine) = ask(&s, &s.key, "How can I reset my password?", false, &[]).await;
        assert!(c.starts_with("semantic; similarity=1.0000"), "{c}");
        assert_eq!(mine, strict);
        let (c, theirs) = ask(&s, &s.key2, "How can I reset my password?", false, &[]).await;
        assert!(c.starts_with("semantic"), "{c}");
        assert_eq!(theirs, other);
        assert_eq!(calls().await, 4);

        // Bypass goes to the provider.
        let (c, _) = ask(&s, &s.key, "How do I reset my password?", false, &[("x-meridian-cache", "bypass")]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 5);
    }
}

mod for_the_edge {
    //! `POST /internal/embed`: what the edge's semantic cache will call to have a question
    //! embedded in the tenant's home region, by the tenant's model.
    use meridian_e2e::*;
    use serde_json::{json, Value};

    #[tokio::test]
    async fn the_home_region_embeds_for_the_edge_and_only_for_its_own_tenants() {
        let data = DataServices::start("eu").await;
        let mut setup = Setup::models(&format!("deployments: [{{ name: oa, provider: openai, model: gpt-4o }}]\nmodels: [{{ name: allowed, deployments: [oa] }}]\n{}", data.yaml("")));
        setup.env = data.env();
        let s = Stack::start(setup).await;
        let call = |secret: Option<&str>, body: Value| {
            let mut r = s.http.post(s.url("/internal/embed")).json(&body);
            if let Some(secret) = secret {
                r = r.header("x-meridian-internal", secret);
            }
            async move {
                let resp = r.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap())
            }
        };
        let secret = s.internal_secret.as_str();
        let (st, v) = call(Some(secret), json!({"tenant": "tenant-eu", "texts": ["How do I reset my password?", "How can I reset my password?"]})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["model"], "all-minilm-l6-v2");
        assert_eq!(v["dims"], 384);
        let vecs: Vec<Vec<f64>> = serde_json::from_value(v["vectors"].clone()).unwrap();
        let dot: f64 = vecs[0].iter().zip(&vecs[1]).map(|(a, b)| a * b).sum();
        assert!(dot > 0.9, "paraphrases are close: {dot}");
        // The multilingual tenant gets its own model.
        let (st, v) = call(Some(secret), json!({"tenant": "tenant-restricted", "texts": ["Wie setze ich mein Passwort zurück?"]})).await;
        assert_eq!((st, v["model"].as_str()), (200, Some("multilingual-e5-small")), "{v}");
        // Refused: no or a wrong secret (even with a valid API key), a tenant homed in
        // another region, an unknown tenant, empty or too many texts.
        assert_eq!(call(None, json!({"tenant": "tenant-eu", "texts": ["x"]})).await.0, 401);
        assert_eq!(call(Some("wrong"), json!({"tenant": "tenant-eu", "texts": ["x"]})).await.0, 401);
        let r = s.http.post(s.url("/internal/embed")).bearer_auth(&s.key).json(&json!({"tenant": "tenant-eu", "texts": ["x"]})).send().await.unwrap();
        assert_eq!(r.status(), 401, "an API key is not the internal secret");
        let (st, v) = call(Some(secret), json!({"tenant": "tenant-us", "texts": ["x"]})).await;
        assert_eq!(st, 403, "{v}");
        assert_eq!(call(Some(secret), json!({"tenant": "nobody", "texts": ["x"]})).await.0, 400);
        assert_eq!(call(Some(secret), json!({"tenant": "tenant-eu", "texts": []})).await.0, 400);
        assert_eq!(call(Some(secret), json!({"tenant": "tenant-eu", "texts": vec!["x"; 17]})).await.0, 400);
        let (st, v) = call(Some(secret), json!({"tenant": "tenant-eu", "texts": ["   "]})).await;
        assert_eq!((st, v["error"]["param"].as_str()), (400, Some("texts")), "{v}");
    }
}

mod at_the_edge {
    //! The edge's semantic cache in real workerd: the question is embedded by the tenant's
    //! home region (real EU backend with its data plane), entries live in the tenant's
    //! `SemanticCache` Durable Object. Paraphrases are served (JSON and SSE) without a
    //! provider call; a negated question, another tenant, a bypass and an unreachable home
    //! region all go to the provider; tenant purge empties the cache.
    use meridian_e2e::*;
    use serde_json::{json, Value};

    const MODELS: &str = r#"
deployments:
  - { name: oa, provider: openai, model: gpt-4o }
models:
  - { name: allowed, deployments: [oa] }
semantic_cache: { enabled: true }
"#;

    async fn ask(s: &EdgeStack, key: &str, q: &str, stream: bool, extra: &[(&str, &str)]) -> (String, String) {
        super::ask_over_http(&s.http, s.url("/v1/chat/completions"), key, q, stream, extra).await
    }

    async fn internal(s: &EdgeStack, path: &str, secret: &str, body: Value) -> (u16, Value) {
        let r = s.http.post(s.url(path)).header("x-meridian-internal", secret).json(&body).send().await.unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap())
    }

    #[tokio::test]
    async fn paraphrase_hits_negation_other_tenant_bypass_and_region_outage_miss() {
        let data = DataServices::start("eu").await;
        let mut s = EdgeStack::start(EdgeSetup::models(MODELS).with_eu_data(&data)).await;
        let calls = || async { s.attempts("gpt-4o").await.len() };

        let (c, first) = ask(&s, &s.key_eu, "How do I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 1);
        // Stored before the answer was returned.
        let (c, again) = ask(&s, &s.key_eu, "How can I reset my password?", false, &[]).await;
        assert!(c.starts_with("semantic; similarity=0.9"), "{c}");
        assert!(c.contains("; age="), "{c}");
        assert_eq!(again, first, "the cached answer");
        assert_eq!(calls().await, 1, "no provider call for a hit");
        let r = s.chat(&s.key_eu, json!({"model": "allowed", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How can I reset my password, please?"}]})).await;
        let timing = header(r.headers(), "server-timing").to_string();
        assert!(timing.starts_with("embed;dur=") && timing.contains(", semantic;dur="), "the lookup's parts are timed: {timing}");
        assert!(header(r.headers(), "x-meridian-cache").starts_with("semantic"));
        assert_eq!(calls().await, 1);

        // Replayed as SSE for a streaming request.
        let (c, streamed) = ask(&s, &s.key_eu, "how can i reset my password", true, &[]).await;
        assert!(c.starts_with("semantic"), "{c}");
        assert_eq!(streamed, first);
        assert_eq!(calls().await, 1);

        // A request may demand more similarity than the paraphrase has (never less).
        let (c, _) = ask(&s, &s.key_eu, "How can I reset my password?", false, &[("x-meridian-semantic-threshold", "0.9999")]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 2);
        let (c, _) = ask(&s, &s.key_eu, "I forgot my password, what now?", false, &[("x-meridian-semantic-threshold", "0.1")]).await;
        assert_eq!(c, "miss", "a lower threshold is ignored: this wording is below 0.95");
        assert_eq!(calls().await, 3);

        // The negated question is close in vector space but must not be served.
        let (c, _) = ask(&s, &s.key_eu, "Why can't I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 4);

        // Tenant B (same region, same model, same request) asking the very same question
        // never gets tenant-eu's answer; then it is served its own entry.
        let (c, _) = ask(&s, &s.key_b, "How do I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
        assert_eq!(calls().await, 5);
        let (c, _) = ask(&s, &s.key_b, "How can I reset my password?", false, &[]).await;
        assert!(c.starts_with("semantic"), "{c}");
        assert_eq!(calls().await, 5);

        // Bypass goes to the provider.
        let (c, _) = ask(&s, &s.key_eu, "How can I reset my password?", false, &[("x-meridian-cache", "bypass")]).await;
        assert_eq!(c, "bypass");
        assert_eq!(calls().await, 6);

        // The hit's usage event reached the home region: no cost, the saving, the lookup.
        let report = s.usage_events(&s.key_eu, 7).await;
        let events = report["events"].as_array().unwrap();
        let hit = events.iter().find(|e| e["cache"] == "semantic" && e["via"] == "edge").unwrap_or_else(|| panic!("{report}"));
        assert_eq!(hit["cost_usd"], 0.0);
        assert!(hit["saved_usd"].as_f64().is_some_and(|v| v > 0.0), "{hit}");
        assert_eq!(hit["semantic"]["outcome"], "hit");
        assert!(events.iter().any(|e| e["semantic"]["outcome"] == "below_threshold" && e["semantic"]["nearest"].as_f64().is_some()), "misses carry their lookup: {report}");
        let metrics = s.http.get(format!("{}/metrics", s.eu.url)).send().await.unwrap().text().await.unwrap();
        assert!(metrics.lines().any(|l| l.starts_with("meridian_semantic_cache_lookups_total") && l.contains("via=\"edge\"") && l.contains("outcome=\"hit\"")), "{metrics}");
        assert!(metrics.contains("meridian_semantic_cache_nearest_similarity"), "nearest similarity recorded");

        // Operators: stats and purge need the internal secret; purge empties the cache.
        let secret = INTERNAL_SECRET;
        assert_eq!(internal(&s, "/internal/semantic-cache/stats", "wrong", json!({"tenant": "tenant-eu"})).await.0, 401);
        let (st, v) = internal(&s, "/internal/semantic-cache/stats", secret, json!({"tenant": "tenant-eu"})).await;
        assert_eq!((st, v["entries"].as_u64()), (200, Some(4)), "{v}");
        assert_eq!(internal(&s, "/internal/semantic-cache/stats", secret, json!({"tenant": "nobody"})).await.0, 400);
        let (st, v) = internal(&s, "/internal/tenant/purge", secret, json!({"tenant": "tenant-eu"})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(internal(&s, "/internal/semantic-cache/stats", secret, json!({"tenant": "tenant-eu"})).await.1["entries"], 0);
        let (c, _) = ask(&s, &s.key_eu, "How can I reset my password?", false, &[]).await;
        assert_eq!(c, "miss", "purged");
        assert_eq!(calls().await, 7);
        assert_eq!(internal(&s, "/internal/semantic-cache/stats", secret, json!({"tenant": "tenant-b"})).await.1["entries"], 1, "other tenants untouched");

        // Import: bad entries are refused whole; a good one is served like a live entry.
        let request = |q: &str| json!({"model": "allowed", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}]});
        let answer = json!({"id": "imported", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Thirty days."}, "finish_reason": "stop"}]});
        let bad = json!({"tenant": "tenant-eu", "entries": [{"request": request("a"), "embedding": [0.1, 0.2], "answer": answer}, {"request": request("b"), "embedding": [0.1], "answer": answer}]});
        let (st, v) = internal(&s, "/internal/semantic-cache/import", secret, bad).await;
        assert_eq!((st, v["error"]["param"].as_str()), (400, Some("entries")), "{v}");
        let no_question = json!({"tenant": "tenant-eu", "entries": [{"request": {"model": "allowed", "messages": [{"role": "assistant", "content": "hi"}]}, "embedding": [0.1], "answer": answer}]});
        assert_eq!(internal(&s, "/internal/semantic-cache/import", secret, no_question).await.0, 400);
        let embedded: Value = s
            .http
            .post(format!("{}/internal/embed", s.eu.url))
            .header("x-meridian-internal", secret)
            .json(&json!({"tenant": "tenant-eu", "texts": ["What is the refund window?"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let good = json!({"tenant": "tenant-eu", "entries": [{"request": request("What is the refund window?"), "embedding": embedded["vectors"][0], "answer": answer}]});
        let (st, v) = internal(&s, "/internal/semantic-cache/import", secret, good).await;
        assert_eq!((st, v["entries"].as_u64()), (200, Some(2)), "{v}");
        let (c, text) = ask(&s, &s.key_eu, "What is the refund window?", false, &[]).await;
        assert!(c.starts_with("semantic; similarity=1.0000"), "{c}");
        assert_eq!(text, "Thirty days.");
        assert_eq!(calls().await, 7, "served from the imported entry");

        // The home region is gone: the lookup is a miss and the answer still comes.
        s.eu.terminate();
        assert!(s.eu.exited_within(std::time::Duration::from_secs(10)), "the EU backend stopped");
        let (c, _) = ask(&s, &s.key_b, "How can I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
        assert_eq!(s.attempts("gpt-4o").await.len(), 8);
    }

    #[tokio::test]
    async fn expired_entries_are_deleted_from_the_object_s_store_by_its_alarm() {
        let data = DataServices::start("eu").await;
        let s = EdgeStack::start(EdgeSetup::models(&MODELS.replace("{ enabled: true }", "{ enabled: true, ttl_secs: 1 }")).with_eu_data(&data)).await;
        let (c, _) = ask(&s, &s.key_eu, "How do I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
        let (_, v) = internal(&s, "/internal/semantic-cache/stats", INTERNAL_SECRET, json!({"tenant": "tenant-eu"})).await;
        assert_eq!(v["stored_rows"], 1, "{v}");
        // Bounded wait for the alarm (TTL 1 s, fired a second after it): no request arrives
        // in between, so only the alarm can delete the row.
        let mut rows = Value::Null;
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            rows = internal(&s, "/internal/semantic-cache/stats", INTERNAL_SECRET, json!({"tenant": "tenant-eu"})).await.1["stored_rows"].clone();
            if rows == 0 {
                break;
            }
        }
        assert_eq!(rows, 0, "the expired entry was deleted");
        let (c, _) = ask(&s, &s.key_eu, "How can I reset my password?", false, &[]).await;
        assert_eq!(c, "miss");
    }
}
