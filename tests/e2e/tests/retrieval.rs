//! Hybrid retrieval (HNSW cosine + full text, RRF) against real PostgreSQL + pgvector,
//! scoped by row-level security.

use meridian_e2e::Postgres;
use meridian_regional::db::Db;
use meridian_regional::rag::keywords;
use meridian_regional::rag::retrieve::{hybrid, vector_literal, Search};
use sqlx::types::Uuid;

const DIM: usize = 384;

/// A unit vector mostly along axis `a`, a little along `b`.
fn emb(a: usize, b: usize, w: f32) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    v[a] = 1.0;
    v[b] += w;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

async fn setup() -> (Postgres, Db) {
    let pg = Postgres::start();
    let url = pg.app_database("meridian").await;
    let db = Db::connect(&url, 4).await.unwrap();
    db.migrate().await.unwrap();
    (pg, db)
}

async fn kb(db: &Db, tenant: &str) -> Uuid {
    let id = Uuid::from_u128(rand_u128());
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    sqlx::query("INSERT INTO knowledge_bases (id, tenant_id, name) VALUES ($1, $2, 'kb')").bind(id).bind(tenant).execute(&mut *tx).await.unwrap();
    sqlx::query("INSERT INTO documents (id, tenant_id, kb_id, title, media_type, object_key, bytes) VALUES ($1, $2, $3, 'doc', 'text/plain', 'k', 1)")
        .bind(id)
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn add_chunk(db: &Db, tenant: &str, doc: Uuid, pos: i32, text: &str, e: &[f32]) -> i64 {
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    let id: i64 =
        sqlx::query_scalar("INSERT INTO chunks (tenant_id, kb_id, document_id, position, text_enc, tsv, embedding) VALUES ($1, $2, $2, $3, $4, to_tsvector('english', $5), $6::vector) RETURNING id")
            .bind(tenant)
            .bind(doc)
            .bind(pos)
            .bind(text.as_bytes())
            .bind(text)
            .bind(vector_literal(e))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    id
}

fn search<'a>(kb: Uuid, e: &'a [f32], q: &'a str, k: usize) -> Search<'a> {
    Search { kb_id: kb, embedding: e, query: q, language: "english", k, candidates: 20, ef_search: 40 }
}

#[tokio::test]
async fn keyword_and_vector_hits_fuse_and_stay_in_the_tenant() {
    let (_pg, db) = setup().await;
    for t in ["a", "b"] {
        db.create_tenant(t, "eu").await.unwrap();
    }
    let kb_a = kb(&db, "a").await;
    let kb_b = kb(&db, "b").await;
    let paris = add_chunk(&db, "a", kb_a, 0, "The capital of France is Paris.", &emb(0, 1, 0.0)).await;
    let rust = add_chunk(&db, "a", kb_a, 1, "Rust is a systems programming language.", &emb(2, 3, 0.0)).await;
    let wyoming = add_chunk(&db, "a", kb_a, 2, "Cheyenne is the capital city of Wyoming.", &emb(4, 5, 0.0)).await;
    // Tenant B holds the very same text and vector.
    add_chunk(&db, "b", kb_b, 0, "Cheyenne is the capital city of Wyoming.", &emb(4, 5, 0.0)).await;
    for (t, kb) in [("a", kb_a), ("b", kb_b)] {
        let mut tx = db.tenant_tx(t).await.unwrap();
        keywords::reindex(&mut tx, t, kb).await.unwrap();
        tx.commit().await.unwrap();
    }

    // The question's embedding points at the Rust chunk; its words at Wyoming.
    let q = emb(2, 4, 0.3);
    let mut tx = db.tenant_tx("a").await.unwrap();
    let hits = hybrid(&mut tx, search(kb_a, &q, "What is the capital of Wyoming?", 3)).await.unwrap();
    let ids: Vec<i64> = hits.iter().map(|h| h.chunk_id).collect();
    assert!(ids.contains(&rust) && ids.contains(&wyoming) && ids.contains(&paris), "{hits:?}");
    let w = hits.iter().find(|h| h.chunk_id == wyoming).unwrap();
    assert_eq!(w.keyword_rank, Some(1), "the only chunk with both lexemes ranks first by keyword");
    assert!(w.vector_rank.is_some());
    assert_eq!(hits[0].chunk_id, wyoming, "present in both lists: fused first");
    // Keyword search takes the query's rarest lexemes first: "wyoming" (1 chunk) and
    // "capit" (2) before anything common.
    let kw = keywords::search(&mut tx, kb_a, "english", "What is the capital of Wyoming?", 5).await.unwrap();
    assert_eq!(kw[0], wyoming);
    // Even asking for tenant B's knowledge base from A's transaction returns nothing.
    let none = hybrid(&mut tx, search(kb_b, &q, "capital of Wyoming", 3)).await.unwrap();
    assert!(none.is_empty(), "RLS hides B's chunks: {none:?}");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn a_filtered_search_still_returns_k_rows() {
    let (_pg, db) = setup().await;
    db.create_tenant("t", "eu").await.unwrap();
    let small = kb(&db, "t").await;
    let big = kb(&db, "t").await;
    // 400 chunks in another knowledge base sit closer to the query than the 5 we want.
    let mut tx = db.tenant_tx("t").await.unwrap();
    for i in 0..400 {
        let e = emb(10, 11 + (i % 300), 0.05);
        sqlx::query("INSERT INTO chunks (tenant_id, kb_id, document_id, position, text_enc, tsv, embedding) VALUES ('t', $1, $1, $2, '\\x00', ''::tsvector, $3::vector)")
            .bind(big)
            .bind(i as i32)
            .bind(vector_literal(&e))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    for i in 0..5 {
        add_chunk(&db, "t", small, i, "unrelated words", &emb(10, 350 + i as usize, 0.9)).await;
    }
    let q = emb(10, 11, 0.05);
    let mut tx = db.tenant_tx("t").await.unwrap();
    let hits = hybrid(&mut tx, Search { candidates: 5, ..search(small, &q, "zzz", 5) }).await.unwrap();
    assert_eq!(hits.len(), 5, "the knowledge-base filter does not cut the result short");
}

fn rand_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() << 8) | N.fetch_add(1, Ordering::Relaxed) as u128
}

/// The same through the HNSW index itself (sorting disabled, so the planner cannot answer
/// from the knowledge-base index plus an exact sort): pgvector 0.8's iterative scan keeps
/// walking the graph past the other knowledge base's closer rows.
#[tokio::test]
async fn the_hnsw_path_with_a_filter_still_returns_k_rows() {
    let (_pg, db) = setup().await;
    db.create_tenant("t", "eu").await.unwrap();
    let small = kb(&db, "t").await;
    let big = kb(&db, "t").await;
    let mut tx = db.tenant_tx("t").await.unwrap();
    // Noisy copies of the query's direction: all closer to it than the small knowledge
    // base's rows. (Not near-duplicates: thousands of almost identical vectors make an
    // HNSW graph whose nodes are not all reachable, which no scan setting can fix.)
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f32 / 10_000.0 * 0.04 - 0.02
    };
    for i in 0..2000 {
        let mut e: Vec<f32> = (0..DIM).map(|_| noise()).collect();
        e[10] += 1.0;
        sqlx::query("INSERT INTO chunks (tenant_id, kb_id, document_id, position, text_enc, tsv, embedding) VALUES ('t', $1, $1, $2, '\\x00', ''::tsvector, $3::vector)")
            .bind(big)
            .bind(i)
            .bind(vector_literal(&e))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    for i in 0..5 {
        add_chunk(&db, "t", small, i, "unrelated words", &emb(10, 350 + i as usize, 0.9)).await;
    }
    let q = emb(10, 11, 0.05);
    let mut tx = db.tenant_tx("t").await.unwrap();
    sqlx::query("SET LOCAL enable_sort = off").execute(&mut *tx).await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.unwrap();
    sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order").execute(&mut *tx).await.unwrap();
    let plan: Vec<String> =
        sqlx::query_scalar(&format!("EXPLAIN SELECT id FROM chunks WHERE kb_id = '{small}' ORDER BY embedding <=> '{}'::vector LIMIT 5", vector_literal(&q))).fetch_all(&mut *tx).await.unwrap();
    assert!(plan.iter().any(|l| l.contains("chunks_embedding_hnsw")), "{plan:#?}");
    let hits = hybrid(&mut tx, Search { candidates: 5, ..search(small, &q, "zzz", 5) }).await.unwrap();
    assert_eq!(hits.len(), 5, "plan: {plan:#?}");
}

/// Keyword search under row-level security reads postings through their index (the
/// reason it exists: a `tsv @@ query` condition cannot use an index under RLS, since `@@`
/// is not leakproof), scores by BM25 (a rare matching word outweighs a common one), and
/// keeps its counts right as documents come and go.
#[tokio::test]
async fn keyword_search_uses_its_index_under_rls_and_scores_by_bm25() {
    let (_pg, db) = setup().await;
    db.create_tenant("t", "eu").await.unwrap();
    let kb_id = kb(&db, "t").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        // "kettle" in every chunk; "descale" in one.
        let text = if i == 7 { "How to descale the kettle".to_string() } else { format!("kettle model {i} colour options") };
        ids.push(add_chunk(&db, "t", kb_id, i, &text, &emb(20, 21, 0.0)).await);
    }
    let mut tx = db.tenant_tx("t").await.unwrap();
    keywords::reindex(&mut tx, "t", kb_id).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.tenant_tx("t").await.unwrap();
    let (n, total): (i64, i64) = sqlx::query_as("SELECT chunk_count, lexeme_total FROM knowledge_bases WHERE id = $1").bind(kb_id).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 30);
    assert!(total > 60, "{total}");
    let hits = keywords::search(&mut tx, kb_id, "english", "descale my kettle", 5).await.unwrap();
    assert_eq!(hits[0], ids[7], "the chunk with the rare word first: {hits:?}");
    // The plan, as the tenant sees it: the postings index, never a scan of the chunks.
    sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.unwrap();
    let explain = format!("EXPLAIN {}", keywords::SEARCH_SQL);
    let plan: Vec<String> = sqlx::query_scalar(&explain)
        .bind(kb_id)
        .bind("english")
        .bind("descale my kettle")
        .bind(keywords::KEYWORD_BUDGET)
        .bind(keywords::K1)
        .bind(keywords::B)
        .bind(5i64)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert!(plan.iter().any(|l| l.contains("chunk_lexemes_search")), "{plan:#?}");
    assert!(!plan.iter().any(|l| l.contains("Seq Scan on chunk_lexemes") || l.contains("Seq Scan on chunks")), "{plan:#?}");
    tx.rollback().await.unwrap();
}
