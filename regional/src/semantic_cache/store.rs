//! The regions' semantic response cache on pgvector, following the shared policy
//! (`meridian_shared::cache::semantic`): a lookup finds the nearest cached question in
//! the same scope (tenant by row-level security, then model, prefix, parameters and
//! language by the scope key), reports its similarity whether or not it is served, and
//! serves it only above the threshold and past the false-hit guard. Questions and
//! answers are sealed with the tenant's data key; entries expire.

use meridian_shared::cache::semantic::{decide, Miss};
use meridian_shared::cache::CachedAnswer;
use pgvector::Vector;

use crate::crypto::DataKey;
use crate::db::{Db, DbError};
use crate::rag::retrieve::vector_literal;

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Served: the answer, its similarity and age in seconds.
    Hit { answer: Box<CachedAnswer>, similarity: f32, age_s: u64 },
    /// Not served; the nearest similarity in scope (for the metric), if any entry exists.
    Miss { nearest: Option<f32>, reason: Option<Miss> },
}

#[derive(sqlx::FromRow)]
struct Nearest {
    id: i64,
    question_enc: Vec<u8>,
    answer_enc: Vec<u8>,
    similarity: f64,
    age: f64,
}

pub struct SemanticCache<'a> {
    pub db: &'a Db,
    pub threshold: f32,
    pub guard: bool,
    pub ttl_s: u64,
}

fn context(scope: &str, what: &str) -> Vec<u8> {
    format!("semcache:{what}:{scope}").into_bytes()
}

impl SemanticCache<'_> {
    pub async fn lookup(&self, tenant: &str, key: &DataKey, scope: &str, question: &str, embedding: &[f32]) -> Result<Lookup, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order").execute(&mut *tx).await?;
        let row: Option<Nearest> = sqlx::query_as(
            "SELECT id, question_enc, answer_enc, 1 - (embedding <=> $2) AS similarity, extract(epoch FROM now() - created_at)::float8 AS age
             FROM semantic_cache WHERE scope = $1 AND expires_at > now()
             ORDER BY embedding <=> $2 LIMIT 1",
        )
        .bind(scope)
        .bind(Vector::from(embedding.to_vec()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(Nearest { id, question_enc: q_enc, answer_enc: a_enc, similarity, age }) = row else {
            return Ok(Lookup::Miss { nearest: None, reason: None });
        };
        let similarity = similarity as f32;
        // Entries sealed under a shredded key no longer open: they are gone.
        let (Ok(cached_q), Ok(answer)) = (key.open(&context(scope, "q"), &q_enc), key.open(&context(scope, "a"), &a_enc)) else {
            return Ok(Lookup::Miss { nearest: None, reason: None });
        };
        if let Err(reason) = decide(similarity, self.threshold, &String::from_utf8_lossy(&cached_q), question, self.guard) {
            return Ok(Lookup::Miss { nearest: Some(similarity), reason: Some(reason) });
        }
        let Ok(answer) = serde_json::from_slice::<CachedAnswer>(&answer) else {
            return Ok(Lookup::Miss { nearest: Some(similarity), reason: None });
        };
        sqlx::query("UPDATE semantic_cache SET hits = hits + 1, last_used = now() WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Lookup::Hit { answer: Box::new(answer), similarity, age_s: age.max(0.0) as u64 })
    }

    pub async fn store(&self, tenant: &str, key: &DataKey, scope: &str, question: &str, embedding: &[f32], answer: &CachedAnswer) -> Result<(), DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        sqlx::query("INSERT INTO semantic_cache (tenant_id, scope, question_enc, answer_enc, embedding, expires_at) VALUES ($1, $2, $3, $4, $5::vector, now() + make_interval(secs => $6))")
            .bind(tenant)
            .bind(scope)
            .bind(key.seal(&context(scope, "q"), question.as_bytes()))
            .bind(key.seal(&context(scope, "a"), &serde_json::to_vec(answer).expect("answer serialises")))
            .bind(vector_literal(embedding))
            .bind(self.ttl_s as f64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the tenant's expired entries; returns how many.
    pub async fn purge_expired(&self, tenant: &str) -> Result<u64, DbError> {
        self.purge(tenant, u64::MAX).await
    }

    /// Deletes the tenant's expired entries, then its least recently used ones beyond
    /// `max_entries`; returns how many went.
    pub async fn purge(&self, tenant: &str, max_entries: u64) -> Result<u64, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let mut n = sqlx::query("DELETE FROM semantic_cache WHERE expires_at <= now()").execute(&mut *tx).await?.rows_affected();
        if max_entries < i64::MAX as u64 {
            n += sqlx::query("DELETE FROM semantic_cache WHERE id IN (SELECT id FROM semantic_cache ORDER BY last_used DESC, id DESC OFFSET $1)")
                .bind(max_entries as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// Every `purge_interval_secs`, removes each of `tenants`' expired entries and its least
/// recently used ones beyond `max_entries_per_tenant`.
pub fn start_purge(db: crate::db::Db, tenants: Vec<String>, cfg: meridian_shared::config::SemanticCacheSettings) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(cfg.purge_interval_secs));
        loop {
            tick.tick().await;
            let cache = SemanticCache { db: &db, threshold: cfg.threshold, guard: cfg.guard, ttl_s: cfg.ttl_secs };
            for t in &tenants {
                match cache.purge(t, cfg.max_entries_per_tenant).await {
                    Ok(n) if n > 0 => tracing::info!(tenant = %t, removed = n, "semantic cache purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(tenant = %t, error = %e, "semantic cache purge failed"),
                }
            }
        }
    });
}
