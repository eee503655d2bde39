//! Hybrid retrieval: the nearest chunks by cosine distance (HNSW, with pgvector 0.8's
//! iterative scan so a tenant/knowledge-base filter does not silently return too few
//! rows) and the best full-text matches (an OR of the query's lexemes — `plainto_` and
//! `websearch_to_tsquery` AND them and miss most natural questions), fused by reciprocal
//! rank fusion. Runs inside a tenant transaction: row-level security scopes both halves.

use sqlx::{PgConnection, Row};

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
    sqlx::query_scalar("SELECT id FROM chunks WHERE kb_id = $1 ORDER BY embedding <=> $2::vector LIMIT $3").bind(kb).bind(vector_literal(embedding)).bind(n as i64).fetch_all(&mut *conn).await
}

/// Most chunks the keyword side ranks: lexemes are taken rarest first while the chunks
/// containing them add up to at most this (at least one lexeme is always kept).
pub const KEYWORD_BUDGET: i64 = 1_000;

/// The `n` best keyword matches: any of the query's lexemes, ranked by `ts_rank` — but
/// only the query's rarest lexemes in this knowledge base (`kb_lexemes`), within
/// [`KEYWORD_BUDGET`] chunks, so common words cannot make it rank most of the base.
/// Lexemes the knowledge base does not contain are dropped (they cannot match).
pub async fn keyword_candidates(conn: &mut PgConnection, kb: sqlx::types::Uuid, language: &str, query: &str, n: usize) -> Result<Vec<i64>, sqlx::Error> {
    // Step 1 picks the lexemes; step 2 searches with them as a plain parameter, planned
    // for its actual value (a tsquery computed inside the same statement hides its
    // selectivity from the planner, which then checks every chunk of the base).
    let tsq: Option<String> = sqlx::query_scalar(
        "WITH terms AS (
            SELECT t.lexeme, sum(s.chunks) OVER (ORDER BY s.chunks, t.lexeme) - s.chunks AS before
            FROM unnest(to_tsvector($2::regconfig, $3)) t
            JOIN kb_lexemes s ON s.kb_id = $1 AND s.lexeme = t.lexeme
         )
         SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery::text FROM terms WHERE before < $4",
    )
    .bind(kb)
    .bind(language)
    .bind(query)
    .bind(KEYWORD_BUDGET)
    .fetch_one(&mut *conn)
    .await?;
    let Some(tsq) = tsq else {
        return Ok(Vec::new());
    };
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *conn).await?;
    sqlx::query_scalar("SELECT id FROM chunks WHERE tsv @@ $2::tsquery AND kb_id = $1 ORDER BY ts_rank(tsv, $2::tsquery) DESC, id LIMIT $3")
        .bind(kb)
        .bind(tsq)
        .bind(n as i64)
        .fetch_all(&mut *conn)
        .await
}

/// Adds the lexemes of one document's chunks to its knowledge base's counts (inside the
/// ingest transaction).
pub async fn count_lexemes(conn: &mut PgConnection, tenant: &str, document: sqlx::types::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO kb_lexemes (tenant_id, kb_id, lexeme, chunks)
         SELECT $1, c.kb_id, t.lexeme, count(*) FROM chunks c, unnest(c.tsv) t WHERE c.document_id = $2 GROUP BY c.kb_id, t.lexeme
         ON CONFLICT (kb_id, lexeme) DO UPDATE SET chunks = kb_lexemes.chunks + excluded.chunks",
    )
    .bind(tenant)
    .bind(document)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes a document's lexemes off its knowledge base's counts (before deleting it).
pub async fn uncount_lexemes(conn: &mut PgConnection, document: sqlx::types::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE kb_lexemes s SET chunks = s.chunks - d.n
         FROM (SELECT c.kb_id, t.lexeme, count(*) AS n FROM chunks c, unnest(c.tsv) t WHERE c.document_id = $1 GROUP BY c.kb_id, t.lexeme) d
         WHERE s.kb_id = d.kb_id AND s.lexeme = d.lexeme",
    )
    .bind(document)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM kb_lexemes WHERE chunks <= 0").execute(&mut *conn).await?;
    Ok(())
}

/// Recounts a knowledge base's lexemes from its chunks (after bulk loads or deletions).
pub async fn recount_lexemes(conn: &mut PgConnection, tenant: &str, kb: sqlx::types::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM kb_lexemes WHERE kb_id = $1").bind(kb).execute(&mut *conn).await?;
    sqlx::query("INSERT INTO kb_lexemes (tenant_id, kb_id, lexeme, chunks) SELECT $1, $2, t.lexeme, count(*) FROM chunks c, unnest(c.tsv) t WHERE c.kb_id = $2 GROUP BY t.lexeme")
        .bind(tenant)
        .bind(kb)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Runs on a connection inside a tenant transaction: the two searches one after the other.
pub async fn hybrid(conn: &mut PgConnection, s: Search<'_>) -> Result<Vec<Hit>, sqlx::Error> {
    let vector = vector_candidates(conn, s.kb_id, s.embedding, s.candidates, s.ef_search).await?;
    let keyword = keyword_candidates(conn, s.kb_id, s.language, s.query, s.candidates).await?;
    fuse_and_fetch(conn, s, &vector, &keyword).await
}

/// The same with the two searches at once, each in its own tenant transaction on its own
/// connection (row-level security binds both): the latency of the slower one, not the sum.
pub async fn hybrid_concurrent(db: &crate::db::Db, tenant: &str, s: Search<'_>) -> Result<Vec<Hit>, sqlx::Error> {
    let (mut a, mut b) = tokio::try_join!(db.tenant_tx(tenant), db.tenant_tx(tenant))?;
    let (vector, keyword) = tokio::try_join!(vector_candidates(&mut a, s.kb_id, s.embedding, s.candidates, s.ef_search), keyword_candidates(&mut b, s.kb_id, s.language, s.query, s.candidates),)?;
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
        "SELECT c.id, c.document_id, c.position, c.heading, c.text_enc, d.title, 1 - (c.embedding <=> $2::vector) AS similarity
         FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ANY($1)",
    )
    .bind(&ids)
    .bind(vector_literal(s.embedding))
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
