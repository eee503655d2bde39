//! The regional data plane end to end over real HTTP: PostgreSQL + pgvector, Redis, an
//! S3 server that verifies signatures, the local MiniLM model, and the mock provider.
//! Knowledge bases, uploads of every supported type, URL ingest, chatbots that answer
//! with citations (JSON and SSE) or say they don't know, bad input, tenant isolation and
//! encryption at rest.

use meridian_e2e::*;
use serde_json::{json, Value};

const MODELS: &str = r#"
deployments:
  - { name: oa, provider: openai, model: gpt-4o }
  - { name: an, provider: anthropic, model: claude-haiku-4-5 }
models:
  - { name: allowed, deployments: [oa] }
  - { name: claude, deployments: [an] }
"#;

const REFUNDS: &str = "# Acme handbook\n\n## Refunds\n\nCustomers may return any unused item within 30 days of delivery for a full refund. Refunds are paid to the original card within 5 business days.\n\n## Shipping\n\nStandard shipping takes 3 to 7 days. Express shipping arrives the next business day when ordered before 2 pm.\n";
const WARRANTY_HTML: &str = "<!doctype html><html><body><h1>Warranty</h1><p>Every Acme kettle carries a two-year warranty against manufacturing defects.</p><p>Damage from dropping the kettle is not covered.</p></body></html>";

struct Rag {
    _data: DataServices,
    s: Stack,
}

async fn rag() -> Rag {
    let data = DataServices::start("eu").await;
    let mut setup = Setup::models(&format!("{MODELS}{}", data.yaml("")));
    setup.env = data.env();
    let s = Stack::start(setup).await;
    Rag { _data: data, s }
}

impl Rag {
    fn data(&self) -> &DataServices {
        &self._data
    }

    async fn json(&self, r: reqwest::Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
    }

    async fn kb(&self, key: &str, name: &str) -> String {
        let (st, v) = self.json(self.s.post("/v1/knowledge-bases", key, &json!({"name": name})).await).await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn upload(&self, key: &str, kb: &str, title: &str, ctype: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self.s.http.post(self.s.url(&format!("/v1/knowledge-bases/{kb}/documents"))).query(&[("title", title)]).bearer_auth(key).header("content-type", ctype).body(body).send().await.unwrap();
        self.json(r).await
    }

    async fn chatbot(&self, key: &str, kb: &str) -> String {
        let (st, v) =
            self.json(self.s.post("/v1/chatbots", key, &json!({"name": "helper", "knowledge_base_id": kb, "model": "allowed", "system_prompt": "You are Acme's support assistant."})).await).await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn documents(&self, key: &str, kb: &str) -> Vec<Value> {
        let (st, v) = self.json(self.s.http.get(self.s.url(&format!("/v1/knowledge-bases/{kb}/documents"))).bearer_auth(key).send().await.unwrap()).await;
        assert_eq!(st, 200, "{v}");
        v["data"].as_array().unwrap().clone()
    }

    /// Rows in `table` across all tenants (as the superuser, which RLS does not bind).
    async fn count(&self, table: &str) -> i64 {
        let url = format!("postgres://postgres@127.0.0.1:{}/meridian", self.data().pg.port);
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

#[tokio::test]
async fn chatbot_answers_from_its_documents_with_citations() {
    let r = rag().await;
    let key = r.s.key.clone();
    let kb = r.kb(&key, "support").await;
    let (st, md) = r.upload(&key, &kb, "Handbook", "text/markdown", REFUNDS.as_bytes().to_vec()).await;
    assert_eq!(st, 201, "{md}");
    assert_eq!(md["document"]["media_type"], "text/markdown");
    let (st, html) = r.upload(&key, &kb, "Warranty", "text/html; charset=utf-8", WARRANTY_HTML.as_bytes().to_vec()).await;
    assert_eq!(st, 201, "{html}");
    let (st, pdf_doc) = r.upload(&key, &kb, "Care guide", "application/pdf", pdf(&["Descale the kettle every month with white vinegar.", "Never immerse the base in water."])).await;
    assert_eq!(st, 201, "{pdf_doc}");
    assert!(pdf_doc["document"]["chunks"].as_u64().unwrap() >= 1);
    assert_eq!(r.documents(&key, &kb).await.len(), 3);

    let bot = r.chatbot(&key, &kb).await;
    let ask = |q: &str, stream: bool| json!({"messages": [{"role": "user", "content": q}], "stream": stream});
    let (st, v) = r.json(r.s.post(&format!("/v1/chatbots/{bot}/chat"), &key, &ask("How many days do I have to return an item for a refund?", false)).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert!(!v["choices"][0]["message"]["content"].as_str().unwrap().is_empty());
    let cites = v["citations"].as_array().unwrap();
    assert!(!cites.is_empty());
    assert_eq!(cites[0]["document_id"], md["document"]["id"], "the refund section is the top source: {cites:?}");
    assert_eq!(cites[0]["index"], 1);
    assert_eq!(cites[0]["document_title"], "Handbook");
    assert!(cites[0]["similarity"].as_f64().unwrap() > 0.3);
    assert!(cites[0]["chunk_id"].as_i64().is_some() && cites[0]["score"].as_f64().is_some());
    // The model saw the chatbot's instructions and the numbered source text.
    let attempts = r.s.attempts("gpt-4o").await;
    let sys = attempts.last().unwrap()["system"].as_str().unwrap().to_string();
    assert!(sys.starts_with("You are Acme's support assistant."), "{sys}");
    assert!(sys.contains("[1] Handbook") && sys.contains("within 30 days of delivery"), "{sys}");

    // Streaming: citations first (a chunk with no choices), then the answer, then [DONE].
    let resp = r.s.post(&format!("/v1/chatbots/{bot}/chat"), &key, &ask("Is dropping my kettle covered by the warranty?", true)).await;
    assert_eq!(resp.status(), 200);
    assert!(header(resp.headers(), "content-type").starts_with("text/event-stream"));
    let sse = read_sse(resp).await;
    let first = &sse.events[0];
    assert_eq!(first["choices"], json!([]));
    let top = &first["citations"][0];
    assert_eq!(top["document_id"], html["document"]["id"], "{first}");
    assert!(sse.done, "{}", sse.raw);
    assert!(!sse.text().is_empty());
    assert_eq!(sse.finish_reason(), Some("stop"));
    // Both answers' usage lands in the region's Postgres, under the tenant (written off
    // the request path: poll until it appears, up to 10 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while r.count("usage_events WHERE tenant_id = 'tenant-eu'").await < 2 {
        assert!(std::time::Instant::now() < deadline, "usage events never reached Postgres");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(r.count("usage_events WHERE tenant_id <> 'tenant-eu'").await, 0);
    // The user behind them (the API key's name) is recorded, and the region's tenants'
    // API keys are mirrored from the config.
    assert_eq!(r.count("users WHERE tenant_id = 'tenant-eu' AND subject = 'k1' AND requests >= 2").await, 1);
    assert_eq!(r.count("users WHERE tenant_id <> 'tenant-eu'").await, 0);
    assert_eq!(r.count("api_keys WHERE tenant_id = 'tenant-eu' AND name = 'k1'").await, 1);
    assert_eq!(r.count("api_keys WHERE tenant_id = 'tenant-us'").await, 0, "US tenants are not this region's");
}

#[tokio::test]
async fn nothing_relevant_means_i_dont_know_and_no_model_call() {
    let r = rag().await;
    let key = r.s.key.clone();
    let kb = r.kb(&key, "support").await;
    r.upload(&key, &kb, "Handbook", "text/markdown", REFUNDS.as_bytes().to_vec()).await;
    let bot = r.chatbot(&key, &kb).await;
    let before = r.s.attempts("gpt-4o").await.len();
    let (st, v) = r.json(r.s.post(&format!("/v1/chatbots/{bot}/chat"), &key, &json!({"messages": [{"role": "user", "content": "Which planet has the most moons?"}]})).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().starts_with("I don't know"), "{v}");
    assert_eq!(v["citations"], json!([]));
    assert_eq!(r.s.attempts("gpt-4o").await.len(), before, "no provider call without sources");
    // Streamed the same way.
    let resp = r.s.post(&format!("/v1/chatbots/{bot}/chat"), &key, &json!({"stream": true, "messages": [{"role": "user", "content": "Which planet has the most moons?"}]})).await;
    let sse = read_sse(resp).await;
    assert!(sse.text().starts_with("I don't know"), "{}", sse.raw);
    assert!(sse.done);
}

const RUECKGABE: &str = "# Acme Handbuch\n\n## Rückgabe\n\nKunden können jeden unbenutzten Artikel innerhalb von 30 Tagen nach Lieferung gegen volle Rückerstattung zurückgeben. Die Erstattung erfolgt innerhalb von 5 Werktagen auf die ursprüngliche Karte.\n\n## Versand\n\nDer Standardversand dauert 3 bis 7 Tage.\n";

/// A tenant serving German and English gets the multilingual model: its knowledge base is
/// built with E5, a German handbook answers an English question (and a German one), and
/// an unrelated question still gets "I don't know". An English-only tenant's region has
/// not loaded E5 for it to ask for.
#[tokio::test]
async fn a_multilingual_tenant_gets_the_multilingual_model() {
    let r = rag().await;
    let key = r.s.restricted_key.clone(); // tenant-restricted: languages [de, en]
    let (st, v) = r.json(r.s.post("/v1/knowledge-bases", &key, &json!({"name": "hilfe", "language": "german"})).await).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["embedding_model"], "multilingual-e5-small");
    let kb = v["id"].as_str().unwrap().to_string();
    let (st, doc) = r.upload(&key, &kb, "Handbuch", "text/markdown", RUECKGABE.as_bytes().to_vec()).await;
    assert_eq!(st, 201, "{doc}");
    let (st, v) = r.json(r.s.post("/v1/chatbots", &key, &json!({"name": "hilfe", "knowledge_base_id": kb, "model": "allowed"})).await).await;
    assert_eq!(st, 201, "{v}");
    let bot = v["id"].as_str().unwrap().to_string();
    for q in ["How many days do I have to return an item for a refund?", "Wie lange habe ich Zeit, einen Artikel zurückzugeben?"] {
        let (st, v) = r.json(r.s.post(&format!("/v1/chatbots/{bot}/chat"), &key, &json!({"messages": [{"role": "user", "content": q}]})).await).await;
        assert_eq!(st, 200, "{v}");
        let cites = v["citations"].as_array().unwrap();
        assert!(!cites.is_empty(), "{q}: {v}");
        assert_eq!(cites[0]["document_id"], doc["document"]["id"]);
        assert_eq!(cites[0]["heading"], "Rückgabe", "{q}: {cites:?}");
    }
    let (st, v) = r.json(r.s.post(&format!("/v1/chatbots/{bot}/chat"), &key, &json!({"messages": [{"role": "user", "content": "Who won the football world cup in 1998?"}]})).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["citations"], json!([]), "{v}");

    // The English tenant's bases are MiniLM; it may force E5 (loaded for its neighbour).
    let (st, v) = r.json(r.s.post("/v1/knowledge-bases", &r.s.key, &json!({"name": "support"})).await).await;
    assert_eq!((st, v["embedding_model"].as_str()), (201, Some("all-minilm-l6-v2")));
    let (st, v) = r.json(r.s.post("/v1/knowledge-bases", &r.s.key, &json!({"name": "x", "embedding_model": "e5"})).await).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn bad_documents_are_refused_and_leave_nothing_behind() {
    let r = rag().await;
    let key = r.s.key.clone();
    let kb = r.kb(&key, "support").await;
    let expect = |(st, v): (u16, Value), status: u16, code: &str| {
        assert_eq!(st, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    };
    expect(r.upload(&key, &kb, "img", "image/png", vec![0x89, b'P', b'N', b'G']).await, 415, "unsupported_media_type");
    expect(r.upload(&key, &kb, "big", "text/plain", vec![b'a'; 200_001]).await, 413, "request_too_large");
    expect(r.upload(&key, &kb, "empty", "text/plain", b"   \n  ".to_vec()).await, 400, "invalid_document");
    expect(r.upload(&key, &kb, "bad pdf", "application/pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF".to_vec()).await, 400, "invalid_document");
    expect(r.upload(&key, &kb, "not utf8", "text/plain", vec![0xc3, 0x28, 0xa0]).await, 400, "invalid_document");
    expect(r.upload(&key, "00000000-0000-0000-0000-000000000000", "x", "text/plain", b"hello".to_vec()).await, 404, "not_found");
    expect(r.upload(&key, "not-a-uuid", "x", "text/plain", b"hello".to_vec()).await, 404, "not_found");
    let r2 =
        r.s.http
            .post(r.s.url(&format!("/v1/knowledge-bases/{kb}/documents")))
            .query(&[("language", "klingon")])
            .bearer_auth(&key)
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap();
    let (st, v) = r.json(r2).await;
    assert_eq!((st, v["error"]["param"].as_str()), (400, Some("language")), "{v}");
    let (st, v) = r.json(r.s.post("/v1/knowledge-bases", &key, &json!({"name": "x", "language": "klingon"})).await).await;
    assert_eq!((st, v["error"]["param"].as_str()), (400, Some("language")));
    let (st, _) = r.json(r.s.post("/v1/chatbots", &key, &json!({"name": "x", "knowledge_base_id": kb, "model": "no-such-model"})).await).await;
    assert_eq!(st, 400);
    // Nothing was written: no documents, no chunks, no stored objects.
    assert!(r.documents(&key, &kb).await.is_empty());
    assert_eq!(r.count("documents").await, 0);
    assert_eq!(r.count("chunks").await, 0);
    assert!(r.data().s3.files().iter().all(|f| !f.to_string_lossy().contains("/documents/")), "{:?}", r.data().s3.files());
    // A good upload after the failures works (nothing half-written blocks a retry).
    let (st, v) = r.upload(&key, &kb, "ok", "text/plain", b"Opening hours are 9 to 5 on weekdays.".to_vec()).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(r.count("chunks").await, v["document"]["chunks"].as_i64().unwrap());
}

#[tokio::test]
async fn multipart_upload_and_url_ingest() {
    let r = rag().await;
    let key = r.s.key.clone();
    let kb = r.kb(&key, "web").await;
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(REFUNDS.as_bytes().to_vec()).file_name("handbook.md").mime_str("application/octet-stream").unwrap())
        .text("title", "Handbook (form)");
    let resp = r.s.http.post(r.s.url(&format!("/v1/knowledge-bases/{kb}/documents"))).bearer_auth(&key).multipart(form).send().await.unwrap();
    let (st, v) = r.json(resp).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!((v["document"]["media_type"].as_str(), v["document"]["title"].as_str()), (Some("text/markdown"), Some("Handbook (form)")), "type from the file name");

    let addr = serve_pages(vec![
        ("/warranty.html", 200, "text/html", WARRANTY_HTML.as_bytes().to_vec()),
        ("/care.pdf", 200, "application/pdf", pdf(&["Descale monthly."])),
        ("/moved", 301, "text/plain", Vec::new()),
    ])
    .await;
    let urls = json!({"urls": [format!("http://{addr}/warranty.html"), format!("http://{addr}/care.pdf"), format!("http://{addr}/missing"), format!("http://{addr}/moved"), "ftp://example.com/x"]});
    let (st, v) = r.json(r.s.post(&format!("/v1/knowledge-bases/{kb}/documents/urls"), &key, &urls).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["ingested"].as_u64(), v["failed"].as_u64()), (Some(2), Some(3)), "{v}");
    let d = v["data"].as_array().unwrap();
    assert_eq!(d[0]["document"]["media_type"], "text/html");
    assert_eq!(d[1]["document"]["media_type"], "application/pdf");
    assert!(d[2]["error"]["message"].as_str().unwrap().contains("404"));
    assert!(d[3]["error"]["message"].as_str().unwrap().contains("redirects are not followed"));
    assert!(d[4]["error"]["message"].as_str().unwrap().contains("only http and https"));
    let docs = r.documents(&key, &kb).await;
    assert_eq!(docs.len(), 3);
    assert!(docs.iter().any(|x| x["source_url"].as_str().is_some_and(|u| u.ends_with("/warranty.html"))));
}

#[tokio::test]
async fn tenants_cannot_reach_each_others_knowledge() {
    let r = rag().await;
    let (a, b) = (r.s.key.clone(), r.s.restricted_key.clone());
    let kb = r.kb(&a, "a's").await;
    let (st, doc) = r.upload(&a, &kb, "Handbook", "text/markdown", REFUNDS.as_bytes().to_vec()).await;
    assert_eq!(st, 201);
    let bot = r.chatbot(&a, &kb).await;
    // B sees none of A's resources, and cannot write into or chat with them.
    let (st, v) = r.json(r.s.http.get(r.s.url("/v1/knowledge-bases")).bearer_auth(&b).send().await.unwrap()).await;
    assert_eq!((st, v["data"].as_array().unwrap().len()), (200, 0));
    let (st, v) = r.upload(&b, &kb, "intrusion", "text/plain", b"B writes here".to_vec()).await;
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (st, _) = r.json(r.s.http.get(r.s.url(&format!("/v1/knowledge-bases/{kb}/documents"))).bearer_auth(&b).send().await.unwrap()).await;
    assert_eq!(st, 404);
    let (st, _) = r.json(r.s.post(&format!("/v1/chatbots/{bot}/chat"), &b, &json!({"messages": [{"role": "user", "content": "refund?"}]})).await).await;
    assert_eq!(st, 404);
    let (st, _) = r.json(r.s.post("/v1/chatbots", &b, &json!({"name": "x", "knowledge_base_id": kb, "model": "allowed"})).await).await;
    assert_eq!(st, 400, "B cannot attach A's knowledge base to its own chatbot");
    let (st, _) = r.json(r.s.http.delete(r.s.url(&format!("/v1/knowledge-bases/{kb}/documents/{}", doc["document"]["id"].as_str().unwrap()))).bearer_auth(&b).send().await.unwrap()).await;
    assert_eq!(st, 404);
    // B's own knowledge base with the same text retrieves only B's chunks.
    let kb_b = r.kb(&b, "b's").await;
    r.upload(&b, &kb_b, "B handbook", "text/markdown", REFUNDS.as_bytes().to_vec()).await;
    let bot_b = r.chatbot(&b, &kb_b).await;
    let (st, v) = r.json(r.s.post(&format!("/v1/chatbots/{bot_b}/chat"), &b, &json!({"messages": [{"role": "user", "content": "How long do refunds take?"}]})).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["citations"].as_array().unwrap().iter().all(|c| c["document_title"] == "B handbook"), "{v}");
    // A's document is still there, untouched.
    assert_eq!(r.documents(&a, &kb).await.len(), 1);
    // A US tenant is refused by the EU backend outright.
    let (st, v) = r.json(r.s.http.get(r.s.url("/v1/knowledge-bases")).bearer_auth(&r.s.us_key).send().await.unwrap()).await;
    assert_eq!(st, 403, "{v}");
}

#[tokio::test]
async fn documents_and_chunks_are_encrypted_at_rest() {
    let r = rag().await;
    let key = r.s.key.clone();
    let kb = r.kb(&key, "secret").await;
    let marker = "Zanzibar-7731 is the vault passphrase";
    let (st, _) = r.upload(&key, &kb, "Secrets", "text/plain", format!("{marker}. Keep it safe.").into_bytes()).await;
    assert_eq!(st, 201);
    // The S3 server's files hold ciphertext only, under the tenant's prefix.
    let files = r.data().s3.files();
    let docs: Vec<_> = files.iter().filter(|f| f.to_string_lossy().contains("tenants/tenant-eu/documents/")).collect();
    assert_eq!(docs.len(), 1, "{files:?}");
    let stored = std::fs::read(docs[0]).unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("Zanzibar"));
    // Chunk text in Postgres is ciphertext too.
    let url = format!("postgres://postgres@127.0.0.1:{}/meridian", r.data().pg.port);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let blobs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT text_enc FROM chunks").fetch_all(&pool).await.unwrap();
    assert!(!blobs.is_empty());
    assert!(blobs.iter().all(|b| !String::from_utf8_lossy(b).contains("Zanzibar")));
    pool.close().await;
}

#[tokio::test]
async fn a_failure_after_the_object_is_stored_rolls_everything_back_and_retry_works() {
    let r = rag().await;
    let key = r.s.key.clone();
    let kb = r.kb(&key, "support").await;
    // Make the chunk insert fail inside the ingest transaction, after the document row
    // was written and the original stored in S3.
    let admin = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{}/meridian", r.data().pg.port)).await.unwrap();
    sqlx::raw_sql("CREATE FUNCTION fail_chunks() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$; CREATE TRIGGER fail_chunks BEFORE INSERT ON chunks FOR EACH ROW EXECUTE FUNCTION fail_chunks();")
        .execute(&admin)
        .await
        .unwrap();
    let (st, v) = r.upload(&key, &kb, "Handbook", "text/markdown", REFUNDS.as_bytes().to_vec()).await;
    assert_eq!(st, 500, "{v}");
    assert!(!v["error"]["message"].as_str().unwrap().contains("disk full"), "internals stay in the logs: {v}");
    assert_eq!((r.count("documents").await, r.count("chunks").await), (0, 0), "the document row was rolled back with its chunks");
    assert!(r.data().s3.files().iter().all(|f| !f.to_string_lossy().contains("/documents/")), "the stored original was removed: {:?}", r.data().s3.files());
    sqlx::raw_sql("DROP TRIGGER fail_chunks ON chunks").execute(&admin).await.unwrap();
    let (st, v) = r.upload(&key, &kb, "Handbook", "text/markdown", REFUNDS.as_bytes().to_vec()).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(r.count("documents").await, 1);
    admin.close().await;
}

#[tokio::test]
async fn shredding_the_tenant_key_makes_its_knowledge_unreadable() {
    let r = rag().await;
    let key = r.s.key.clone();
    let kb = r.kb(&key, "support").await;
    r.upload(&key, &kb, "Handbook", "text/markdown", REFUNDS.as_bytes().to_vec()).await;
    let bot = r.chatbot(&key, &kb).await;
    let q = json!({"messages": [{"role": "user", "content": "How many days do I have to return an item?"}]});
    let (_, v) = r.json(r.s.post(&format!("/v1/chatbots/{bot}/chat"), &key, &q).await).await;
    assert!(!v["citations"].as_array().unwrap().is_empty(), "{v}");
    let db = meridian_regional::db::Db::connect(&r.data().database_url, 1).await.unwrap();
    let keyring = meridian_regional::crypto::Keyring::from_hex(&r.data().master_key).unwrap();
    let files = r.data().s3.files();
    let stored = files.iter().find(|f| f.to_string_lossy().contains("tenants/tenant-eu/documents/")).unwrap().clone();
    let object_key = stored.to_string_lossy().split_once("meridian-eu/").unwrap().1.to_string();
    let original = db.data_key(&keyring, "tenant-eu").await.unwrap().open(object_key.as_bytes(), &std::fs::read(&stored).unwrap()).expect("opens before shredding");
    assert_eq!(original, REFUNDS.as_bytes());
    assert!(db.shred_tenant_key("tenant-eu").await.unwrap());
    // Ciphertext remains in Postgres and S3, but nothing opens it: the chatbot has no sources.
    assert!(r.count("chunks").await > 0);
    let (st, v) = r.json(r.s.post(&format!("/v1/chatbots/{bot}/chat"), &key, &q).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["citations"], json!([]), "{v}");
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().starts_with("I don't know"));
    let fresh = db.data_key(&keyring, "tenant-eu").await.unwrap();
    assert!(fresh.open(object_key.as_bytes(), &std::fs::read(&stored).unwrap()).is_err(), "the stored original no longer opens");
}
