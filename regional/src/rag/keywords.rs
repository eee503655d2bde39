//! Keyword search: an inverted index kept in PostgreSQL (`chunk_lexemes`: one row per
//! chunk and lexeme, with the term frequency and the chunk's length) scored with BM25.
//!
//! Not the GIN index over `tsvector`: under row-level security PostgreSQL uses an index
//! only for LEAKPROOF operators and `@@` is not one, so a `tsv @@ query` search reads the
//! whole table. The postings are found by `kb_id` and `lexeme` equality (leakproof), in
//! an index-only scan, with the tenant policy still applied to every row.
//!
//! Only the query's rarest lexemes in the knowledge base are looked up (by the per-base
//! counts in `kb_lexemes`), within [`KEYWORD_BUDGET`] postings, so a question full of
//! common words cannot make one search score most of the base. BM25's inverse document
//! frequency already gives such words little weight.

use sqlx::types::Uuid;
use sqlx::PgConnection;

/// Most postings one search scores: lexemes are taken rarest first while the chunks
/// containing them add up to at most this (the rarest lexeme is always kept, however
/// common it is).
pub const KEYWORD_BUDGET: i64 = 3_000;

/// BM25's term-frequency saturation and length normalisation (the usual defaults).
pub const K1: f64 = 1.2;
pub const B: f64 = 0.75;

/// The search statement: `$1` knowledge base, `$2` text-search configuration, `$3` query,
/// `$4` posting budget, `$5` k1, `$6` b, `$7` how many.
pub const SEARCH_SQL: &str = "WITH base AS (
            SELECT greatest(chunk_count, 1)::float8 AS n, greatest(lexeme_total::float8 / greatest(chunk_count, 1), 1) AS avglen
            FROM knowledge_bases WHERE id = $1
         ), terms AS (
            SELECT t.lexeme, s.chunks::float8 AS df, sum(s.chunks) OVER (ORDER BY s.chunks, t.lexeme) - s.chunks AS before
            FROM unnest(to_tsvector($2::regconfig, $3)) t
            JOIN kb_lexemes s ON s.kb_id = $1 AND s.lexeme = t.lexeme
         ), q AS (
            SELECT terms.lexeme, ln(1 + (base.n - terms.df + 0.5) / (terms.df + 0.5)) AS idf, base.avglen
            FROM terms, base WHERE terms.before = 0 OR terms.before + terms.df <= $4
         )
         SELECT p.chunk_id FROM q JOIN chunk_lexemes p ON p.kb_id = $1 AND p.lexeme = q.lexeme
         GROUP BY p.chunk_id
         ORDER BY sum(q.idf * p.tf * ($5 + 1) / (p.tf + $5 * (1 - $6 + $6 * p.len / q.avglen))) DESC, p.chunk_id
         LIMIT $7";

/// The `n` best chunks of the knowledge base for `query` by BM25, best first. `language`
/// is the PostgreSQL text-search configuration that stemmed the chunks.
pub async fn search(conn: &mut PgConnection, kb: Uuid, language: &str, query: &str, n: usize) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(SEARCH_SQL).bind(kb).bind(language).bind(query).bind(KEYWORD_BUDGET).bind(K1).bind(B).bind(n as i64).fetch_all(conn).await
}

/// Whose chunks to index.
enum Of {
    Document(Uuid),
    KnowledgeBase(Uuid),
}

/// One posting per chunk and lexeme, with the lexeme's frequency in the chunk and the
/// chunk's length in lexemes.
async fn insert_postings(conn: &mut PgConnection, tenant: &str, of: Of) -> Result<(), sqlx::Error> {
    let (column, id) = match of {
        Of::Document(id) => ("document_id", id),
        Of::KnowledgeBase(id) => ("kb_id", id),
    };
    sqlx::query(&format!(
        "INSERT INTO chunk_lexemes (tenant_id, kb_id, lexeme, chunk_id, tf, len)
         SELECT $1, c.kb_id, t.lexeme, c.id, coalesce(cardinality(t.positions), 1), length(c.tsv) FROM chunks c, unnest(c.tsv) t WHERE c.{column} = $2"
    ))
    .bind(tenant)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Indexes one document's chunks (inside its ingest transaction): postings, the
/// knowledge base's lexeme counts, and its chunk count and total length.
pub async fn index_document(conn: &mut PgConnection, tenant: &str, document: Uuid) -> Result<(), sqlx::Error> {
    insert_postings(conn, tenant, Of::Document(document)).await?;
    sqlx::query(
        "INSERT INTO kb_lexemes (tenant_id, kb_id, lexeme, chunks)
         SELECT $1, p.kb_id, p.lexeme, count(*) FROM chunk_lexemes p JOIN chunks c ON c.id = p.chunk_id WHERE c.document_id = $2 GROUP BY p.kb_id, p.lexeme
         ON CONFLICT (kb_id, lexeme) DO UPDATE SET chunks = kb_lexemes.chunks + excluded.chunks",
    )
    .bind(tenant)
    .bind(document)
    .execute(&mut *conn)
    .await?;
    add_to_totals(conn, document, 1).await
}

/// Takes a document's chunks off the counts (before deleting it; its postings go with
/// its chunks).
pub async fn unindex_document(conn: &mut PgConnection, document: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE kb_lexemes s SET chunks = s.chunks - d.n
         FROM (SELECT c.kb_id, t.lexeme, count(*) AS n FROM chunks c, unnest(c.tsv) t WHERE c.document_id = $1 GROUP BY c.kb_id, t.lexeme) d
         WHERE s.kb_id = d.kb_id AND s.lexeme = d.lexeme",
    )
    .bind(document)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM kb_lexemes WHERE chunks <= 0").execute(&mut *conn).await?;
    add_to_totals(conn, document, -1).await
}

async fn add_to_totals(conn: &mut PgConnection, document: Uuid, sign: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE knowledge_bases kb SET chunk_count = kb.chunk_count + $2 * d.n, lexeme_total = kb.lexeme_total + $2 * d.total
         FROM (SELECT kb_id, count(*) AS n, coalesce(sum(length(tsv)), 0) AS total FROM chunks WHERE document_id = $1 GROUP BY kb_id) d
         WHERE kb.id = d.kb_id",
    )
    .bind(document)
    .bind(sign)
    .execute(conn)
    .await?;
    Ok(())
}

/// Rebuilds a knowledge base's keyword index from its chunks (after a bulk load).
pub async fn reindex(conn: &mut PgConnection, tenant: &str, kb: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM chunk_lexemes WHERE kb_id = $1").bind(kb).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM kb_lexemes WHERE kb_id = $1").bind(kb).execute(&mut *conn).await?;
    insert_postings(conn, tenant, Of::KnowledgeBase(kb)).await?;
    sqlx::query("INSERT INTO kb_lexemes (tenant_id, kb_id, lexeme, chunks) SELECT $1, $2, lexeme, count(*) FROM chunk_lexemes WHERE kb_id = $2 GROUP BY lexeme")
        .bind(tenant)
        .bind(kb)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE knowledge_bases SET (chunk_count, lexeme_total) = (SELECT count(*), coalesce(sum(length(tsv)), 0) FROM chunks WHERE kb_id = $1) WHERE id = $1").bind(kb).execute(conn).await?;
    Ok(())
}
