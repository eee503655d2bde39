//! Hybrid retrieval: the nearest chunks by cosine distance (HNSW, with pgvector 0.8's
//! iterative scan so a tenant/knowledge-base filter does not silently return too few
//! rows) and the best keyword matches (BM25 over any of the query's lexemes, see
//! [`keywords`] — `plainto_` and `websearch_to_tsquery` AND them and miss most natural
//! questions), fused by reciprocal rank fusion. Runs inside a tenant transaction:
//! row-level security scopes both halves.

use pgvector::Vector;
use sqlx::{PgConnection, Row};

use super::keywords;

/// RRF constant from Cormack et al. (2009).
const RRF_K: f64 = 60.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub chunk_id: i64,
    pub document_id: sqlx::types::Uuid,
    pub position: i32,
    pub score: f64,
    /// Rank in the vector and keyword lists (1-based), when present in them.
    pub vector_rank: Option<usize>,
    pub keyword_rank: Option<usize>,
    /// Cosine similarity of the chunk to the query embedding.
    pub similarity: f64,
    pub heading: Option<String>,
    pub document_title: String,
    pub text_enc: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    pub kb_id: sqlx::types::Uuid,
    pub embedding: &'a [f32],
    pub query: &'a str,
    /// Postgres text-search configuration (`english`, `german`, `simple`, ...).
    pub language: &'a str,
    pub k: usize,
    /// Candidates taken from each list before fusion.
    pub candidates: usize,
    pub ef_search: u32,
}

pub fn vector_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

/// Fuses two ranked id lists by reciprocal rank.
pub fn rrf(vector: &[i64], keyword: &[i64]) -> Vec<(i64, f64, Option<usize>, Option<usize>)> {
    let mut scores: Vec<(i64, f64, Option<usize>, Option<usize>)> = Vec::new();
    let mut add = |id: i64, rank: usize, is_vector: bool| {
        let s = 1.0 / (RRF_K + rank as f64);
        match scores.iter_mut().find(|e| e.0 == id) {
            Some(e) => {
                e.1 += s;
                if is_vector {
                    e.2 = Some(rank)
                } else {
                    e.3 = Some(rank)
                }
            }
            None => scores.push((id, s, is_vector.then_some(rank), (!is_vector).then_some(rank))),
        }
    };
    for (i, id) in vector.iter().enumerate() {
        add(*id, i + 1, true);
    }
    for (i, id) in keyword.iter().enumerate() {
        add(*id, i + 1, false);
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scores
}

/// The `n` nearest chunks of the knowledge base by cosine distance (HNSW, iterative scan).
pub async fn vector_candidates(conn: &mut PgConnection, kb: sqlx::types::Uuid, embedding: &[f32], n: usize, ef_search: u32) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query(&format!("SET LOCAL hnsw.ef_search = {}", ef_search.clamp(1, 1000))).execute(&mut *conn).await?;
    sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order").execute(&mut *conn).await?;
    sqlx::query_scalar("SELECT id FROM chunks WHERE kb_id = $1 ORDER BY embedding <=> $2 LIMIT $3").bind(kb).bind(Vector::from(embedding.to_vec())).bind(n as i64).fetch_all(&mut *conn).await
}

/// Runs on a connection inside a tenant transaction: the two searches one after the other.
pub async fn hybrid(conn: &mut PgConnection, s: Search<'_>) -> Result<Vec<Hit>, sqlx::Error> {
    let vector = vector_candidates(conn, s.kb_id, s.embedding, s.candidates, s.ef_search).await?;
    let keyword = keywords::search(conn, s.kb_id, s.language, s.query, s.candidates).await?;
    fuse_and_fetch(conn, s, &vector, &keyword).await
}

/// The same with the two searches at once, each in its own tenant transaction on its own
/// connection (row-level security binds both): the latency of the slower one, not the sum.
pub async fn hybrid_concurrent(db: &crate::db::Db, tenant: &str, s: Search<'_>) -> Result<Vec<Hit>, sqlx::Error> {
    let (mut a, mut b) = tokio::try_join!(db.tenant_tx(tenant), db.tenant_tx(tenant))?;
    let (vector, keyword) = tokio::try_join!(vector_candidates(&mut a, s.kb_id, s.embedding, s.candidates, s.ef_search), keywords::search(&mut b, s.kb_id, s.language, s.query, s.candidates),)?;
    b.rollback().await?;
    let hits = fuse_and_fetch(&mut a, s, &vector, &keyword).await?;
    a.rollback().await?;
    Ok(hits)
}

/// Fuses the two lists, keeps the best `k`, and loads those chunks with their similarity
/// and their document's title.
async fn fuse_and_fetch(conn: &mut PgConnection, s: Search<'_>, vector: &[i64], keyword: &[i64]) -> Result<Vec<Hit>, sqlx::Error> {
    let fused: Vec<_> = rrf(vector, keyword).into_iter().take(s.k).collect();
    let ids: Vec<i64> = fused.iter().map(|f| f.0).collect();
    let rows = sqlx::query(
        "SELECT c.id, c.document_id, c.position, c.heading, c.text_enc, d.title, 1 - (c.embedding <=> $2) AS similarity
         FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ANY($1)",
    )
    .bind(&ids)
    .bind(Vector::from(s.embedding.to_vec()))
    .fetch_all(&mut *conn)
    .await?;
    Ok(fused
        .into_iter()
        .filter_map(|(id, score, vr, kr)| {
            let r = rows.iter().find(|r| r.get::<i64, _>("id") == id)?;
            Some(Hit {
                chunk_id: id,
                document_id: r.get("document_id"),
                position: r.get("position"),
                score,
                vector_rank: vr,
                keyword_rank: kr,
                similarity: r.get("similarity"),
                heading: r.get("heading"),
                document_title: r.get("title"),
                text_enc: r.get("text_enc"),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement() {
        let f = rrf(&[1, 2, 3], &[3, 4]);
        assert_eq!(f[0].0, 3, "in both lists");
        assert_eq!(f[0].2, Some(3));
        assert_eq!(f[0].3, Some(1));
        assert_eq!(f.len(), 4);
        assert_eq!(vector_literal(&[1.0, 0.5]), "[1,0.5]");
    }
}
