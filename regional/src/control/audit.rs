//! The audit log in PostgreSQL: one hash-chained record per admin mutation, appended in
//! the mutation's own transaction (so there is never a change without its record, nor a
//! record of a change that did not happen), and its verification.

use meridian_shared::control::audit::{self, AuditRecord, Broken, GENESIS};
use sqlx::{Postgres, Row, Transaction};

use crate::db::{Db, DbError};

/// What a mutation says about itself.
pub struct Entry<'a> {
    pub actor: String,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: String,
    pub before: Option<&'a serde_json::Value>,
    pub after: Option<&'a serde_json::Value>,
    pub request_id: Option<String>,
}

/// Appends `e` to the tenant's chain inside `tx` (a tenant transaction). Appends of one
/// tenant are serialised by a transaction-scoped advisory lock, so the chain never forks.
pub async fn append(tx: &mut Transaction<'static, Postgres>, tenant: &str, e: Entry<'_>) -> Result<AuditRecord, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1, 0))").bind(tenant).execute(&mut **tx).await?;
    let head = sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1").bind(tenant).fetch_optional(&mut **tx).await?;
    let (seq, prev_hash) = match head {
        Some(r) => (r.get::<i64, _>("seq") + 1, r.get::<String, _>("hash")),
        None => (1, GENESIS.to_string()),
    };
    let at: String = sqlx::query_scalar("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").fetch_one(&mut **tx).await?;
    let mut r = AuditRecord {
        tenant: tenant.to_string(),
        seq,
        at,
        actor: e.actor,
        action: e.action.to_string(),
        object_type: e.object_type.to_string(),
        object_id: e.object_id,
        before_digest: e.before.map(audit::digest_of),
        after_digest: e.after.map(audit::digest_of),
        request_id: e.request_id,
        prev_hash,
        hash: String::new(),
    };
    r.hash = r.chain_hash();
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, seq, at, actor, action, object_type, object_id, before_digest, after_digest, request_id, prev_hash, hash)
         VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&r.tenant)
    .bind(r.seq)
    .bind(&r.at)
    .bind(&r.actor)
    .bind(&r.action)
    .bind(&r.object_type)
    .bind(&r.object_id)
    .bind(&r.before_digest)
    .bind(&r.after_digest)
    .bind(&r.request_id)
    .bind(&r.prev_hash)
    .bind(&r.hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash")
        .bind(tenant)
        .bind(r.seq)
        .bind(&r.hash)
        .execute(&mut **tx)
        .await?;
    Ok(r)
}

fn record(row: &sqlx::postgres::PgRow) -> AuditRecord {
    AuditRecord {
        tenant: row.get("tenant_id"),
        seq: row.get("seq"),
        at: row.get("at"),
        actor: row.get("actor"),
        action: row.get("action"),
        object_type: row.get("object_type"),
        object_id: row.get("object_id"),
        before_digest: row.get("before_digest"),
        after_digest: row.get("after_digest"),
        request_id: row.get("request_id"),
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
    }
}

const COLUMNS: &str = "tenant_id, seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at, actor, action, object_type, object_id, before_digest, after_digest, request_id, prev_hash, hash";

/// A page of the tenant's records, newest first, before `before_seq`.
pub async fn page(db: &Db, tenant: &str, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditRecord>, DbError> {
    let mut tx = db.tenant_tx(tenant).await?;
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2"))
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows.iter().map(record).collect())
}

/// Verifies the tenant's whole chain against its head: the number of records, or where
/// it is broken.
pub async fn verify(db: &Db, tenant: &str) -> Result<Result<usize, Broken>, DbError> {
    let mut tx = db.tenant_tx(tenant).await?;
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq")).fetch_all(&mut *tx).await?;
    let head = sqlx::query("SELECT seq, hash FROM audit_heads").fetch_optional(&mut *tx).await?.map(|r| (r.get::<i64, _>("seq"), r.get::<String, _>("hash")));
    let records: Vec<AuditRecord> = rows.iter().map(record).collect();
    Ok(audit::verify(&records, head.as_ref().map(|(s, h)| (*s, h.as_str()))))
}
