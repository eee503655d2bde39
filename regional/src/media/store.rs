//! Media jobs in PostgreSQL (`media_jobs`, row-level security per tenant): the source of
//! truth for every job. State changes are single conditional UPDATEs, so concurrent
//! workers, retries and cancellation can never make a job succeed twice or leave a
//! finished state.

use meridian_shared::media::{JobStatus, MediaKind, MediaRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::crypto::DataKey;
use crate::db::{Db, DbError};

/// One stored result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredOutput {
    pub key: String,
    pub content_type: String,
    pub bytes: u64,
}

/// A job as the API shows it (the request stays sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub tenant: String,
    pub user: String,
    pub feature: Option<String>,
    pub kind: MediaKind,
    pub model: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub progress: Option<f32>,
    pub outputs: Vec<StoredOutput>,
    pub error: Option<String>,
    pub deployment: Option<String>,
    pub cost_usd: Option<f64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// What `create` needs.
pub struct NewJob<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub feature: Option<&'a str>,
    pub request: &'a MediaRequest,
    pub upload_key: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

pub enum Created {
    New(Job),
    /// The idempotency key was used before with the same request: that job.
    Existing(Job),
    /// The idempotency key was used before with a different request.
    Conflict,
}

/// A claimed job, for the worker.
pub struct Claimed {
    pub job: Job,
    pub request: MediaRequest,
    pub upload_key: Option<String>,
}

const COLUMNS: &str = "id, tenant_id, user_name, feature, kind, model, status, attempts, progress, outputs, error, deployment, cost_usd,
    extract(epoch from created_at)::bigint AS created, extract(epoch from updated_at)::bigint AS updated, extract(epoch from finished_at)::bigint AS finished";

fn job(r: &sqlx::postgres::PgRow) -> Job {
    Job {
        id: r.get("id"),
        tenant: r.get("tenant_id"),
        user: r.get("user_name"),
        feature: r.get("feature"),
        kind: MediaKind::from_name(r.get::<String, _>("kind").as_str()).unwrap_or(MediaKind::Image),
        model: r.get("model"),
        status: JobStatus::from_name(r.get::<String, _>("status").as_str()).unwrap_or(JobStatus::Failed),
        attempts: r.get("attempts"),
        progress: r.get("progress"),
        outputs: serde_json::from_value(r.get::<Value, _>("outputs")).unwrap_or_default(),
        error: r.get("error"),
        deployment: r.get("deployment"),
        cost_usd: r.get("cost_usd"),
        created_at: r.get("created"),
        updated_at: r.get("updated"),
        finished_at: r.get("finished"),
    }
}

fn context(id: Uuid) -> Vec<u8> {
    format!("media:request:{id}").into_bytes()
}

/// The digest an idempotency key is bound to.
pub fn request_digest(req: &MediaRequest, upload: Option<&[u8]>) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(req).expect("requests serialise"));
    if let Some(u) = upload {
        h.update(Sha256::digest(u));
    }
    h.finalize().to_vec()
}

pub struct JobStore<'a> {
    pub db: &'a Db,
}

impl JobStore<'_> {
    /// Creates a queued job, or finds the one this idempotency key already made.
    pub async fn create(&self, key: &DataKey, new: NewJob<'_>, digest: &[u8]) -> Result<Created, DbError> {
        let id = Uuid::new_v4();
        let sealed = key.seal(&context(id), &serde_json::to_vec(new.request).expect("requests serialise"));
        let mut tx = self.db.tenant_tx(new.tenant).await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO media_jobs (id, tenant_id, user_name, feature, kind, model, status, request_enc, upload_key, idempotency_key, request_sha256)
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9, $10)
             ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(new.tenant)
        .bind(new.user)
        .bind(new.feature)
        .bind(new.request.kind().as_str())
        .bind(new.request.model())
        .bind(&sealed)
        .bind(new.upload_key)
        .bind(new.idempotency_key)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let out = match inserted {
            Some(r) => Created::New(job(&r)),
            None => {
                let r = sqlx::query(&format!("SELECT {COLUMNS}, request_sha256 FROM media_jobs WHERE idempotency_key = $1")).bind(new.idempotency_key).fetch_one(&mut *tx).await?;
                if r.get::<Vec<u8>, _>("request_sha256") == digest {
                    Created::Existing(job(&r))
                } else {
                    Created::Conflict
                }
            }
        };
        tx.commit().await?;
        Ok(out)
    }

    pub async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Job>, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM media_jobs WHERE id = $1")).bind(id).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(r.as_ref().map(job))
    }

    /// The tenant's jobs, newest first, `limit` after the job `after` (cursor).
    pub async fn list(&self, tenant: &str, after: Option<Uuid>, limit: i64, status: Option<JobStatus>) -> Result<Vec<Job>, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM media_jobs
             WHERE ($1::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM media_jobs WHERE id = $1))
               AND ($2::text IS NULL OR status = $2)
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(after)
        .bind(status.map(JobStatus::as_str))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.iter().map(job).collect())
    }

    /// Cancels a job that has not finished; returns it as it is now.
    pub async fn cancel(&self, tenant: &str, id: Uuid) -> Result<Option<(Job, bool)>, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let done = sqlx::query(&format!(
            "UPDATE media_jobs SET status = 'cancelled', updated_at = now(), finished_at = now(), lease_until = NULL
             WHERE id = $1 AND status IN ('queued', 'running') RETURNING {COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let out = match done {
            Some(r) => Some((job(&r), true)),
            None => sqlx::query(&format!("SELECT {COLUMNS} FROM media_jobs WHERE id = $1")).bind(id).fetch_optional(&mut *tx).await?.map(|r| (job(&r), false)),
        };
        tx.commit().await?;
        Ok(out)
    }

    /// Takes a job for `worker` until the lease ends: a queued job, or a running one whose
    /// worker's lease ran out (that worker is presumed dead). `None`: not claimable
    /// (finished, cancelled, or held by a live worker).
    pub async fn claim(&self, key: &DataKey, tenant: &str, id: Uuid, worker: &str, lease_ms: u64) -> Result<Option<Claimed>, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let r = sqlx::query(&format!(
            "UPDATE media_jobs SET status = 'running', worker = $2, attempts = attempts + 1, updated_at = now(),
                 lease_until = now() + make_interval(secs => $3::double precision / 1000)
             WHERE id = $1 AND (status = 'queued' OR (status = 'running' AND lease_until < now()))
             RETURNING {COLUMNS}, request_enc, upload_key"
        ))
        .bind(id)
        .bind(worker)
        .bind(lease_ms as f64)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(r) = r else { return Ok(None) };
        let request: MediaRequest = serde_json::from_slice(&key.open(&context(id), &r.get::<Vec<u8>, _>("request_enc"))?).map_err(|e| DbError::Sql(sqlx::Error::Decode(Box::new(e))))?;
        Ok(Some(Claimed { job: job(&r), request, upload_key: r.get("upload_key") }))
    }

    /// Extends the lease (and records progress) while `worker` still holds the job;
    /// `false` when it no longer does (cancelled, or taken over).
    pub async fn heartbeat(&self, tenant: &str, id: Uuid, worker: &str, lease_ms: u64, progress: Option<f32>) -> Result<bool, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let n = sqlx::query(
            "UPDATE media_jobs SET lease_until = now() + make_interval(secs => $3::double precision / 1000), progress = COALESCE($4, progress), updated_at = now()
             WHERE id = $1 AND worker = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(lease_ms as f64)
        .bind(progress)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Finishes a job `worker` holds: succeeded with outputs, or failed with a reason.
    /// `false` when the worker no longer holds it (its result must be discarded).
    pub async fn finish(&self, tenant: &str, id: Uuid, worker: &str, outcome: Result<(&[StoredOutput], &str, Option<f64>), &str>) -> Result<bool, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let q = match outcome {
            Ok((outputs, deployment, cost)) => sqlx::query(
                "UPDATE media_jobs SET status = 'succeeded', outputs = $3, deployment = $4, cost_usd = $5, progress = 1, error = NULL,
                     lease_until = NULL, updated_at = now(), finished_at = now()
                 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(id)
            .bind(worker)
            .bind(serde_json::to_value(outputs).expect("outputs serialise"))
            .bind(deployment)
            .bind(cost),
            Err(reason) => sqlx::query(
                "UPDATE media_jobs SET status = 'failed', error = $3, lease_until = NULL, updated_at = now(), finished_at = now()
                 WHERE id = $1 AND worker = $2 AND status = 'running'",
            )
            .bind(id)
            .bind(worker)
            .bind(reason),
        };
        let n = q.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Puts a job `worker` holds back in the queue (a retry after a failed attempt, a
    /// tenant over its concurrency, or a worker shutting down).
    pub async fn requeue(&self, tenant: &str, id: Uuid, worker: &str, reason: Option<&str>, undo_attempt: bool) -> Result<bool, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let n = sqlx::query(
            "UPDATE media_jobs SET status = 'queued', worker = NULL, lease_until = NULL, error = COALESCE($3, error),
                 attempts = attempts - CASE WHEN $4 THEN 1 ELSE 0 END, updated_at = now()
             WHERE id = $1 AND worker = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(reason)
        .bind(undo_attempt)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Records that a queued job is still circulating (deferred by its tenant's
    /// concurrency limit), so the reconciler leaves it alone.
    pub async fn touch_queued(&self, tenant: &str, id: Uuid) -> Result<(), DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        sqlx::query("UPDATE media_jobs SET updated_at = now() WHERE id = $1 AND status = 'queued'").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Jobs of `tenant` and `kinds` that need a (new) delivery: queued and untouched for
    /// `idle_ms`, or running past their lease. For the reconciler, which re-enqueues
    /// them after Redis lost its data.
    pub async fn stale(&self, tenant: &str, kinds: &[&str], idle_ms: u64) -> Result<Vec<(Uuid, String)>, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT id, kind FROM media_jobs
             WHERE status IN ('queued', 'running') AND kind = ANY($1)
               AND ((status = 'queued' AND updated_at < now() - make_interval(secs => $2::double precision / 1000)) OR (status = 'running' AND lease_until < now()))",
        )
        .bind(kinds)
        .bind(idle_ms as f64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.iter().map(|r| (r.get("id"), r.get("kind"))).collect())
    }

    /// The job's webhook call succeeded (or was given up): no reconciler resends it.
    pub async fn mark_notified(&self, tenant: &str, id: Uuid) -> Result<(), DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        sqlx::query("UPDATE media_jobs SET notified_at = now() WHERE id = $1 AND notified_at IS NULL").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Finished jobs whose webhook has not been confirmed within `after_ms` of finishing:
    /// (id, status, error, finished at).
    pub async fn unnotified(&self, tenant: &str, after_ms: u64) -> Result<Vec<(Uuid, JobStatus, Option<String>, i64)>, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT id, status, error, extract(epoch from finished_at)::bigint AS finished FROM media_jobs
             WHERE notified_at IS NULL AND status IN ('succeeded', 'failed', 'cancelled')
               AND finished_at < now() - make_interval(secs => $1::double precision / 1000)
             LIMIT 500",
        )
        .bind(after_ms as f64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.iter().map(|r| (r.get("id"), JobStatus::from_name(r.get::<String, _>("status").as_str()).unwrap_or(JobStatus::Failed), r.get("error"), r.get("finished"))).collect())
    }

    /// Finished jobs' count and cost per user, feature and kind (the admin usage report).
    pub async fn usage(&self, tenant: &str) -> Result<Vec<MediaUsage>, DbError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let rows = sqlx::query(
            "SELECT user_name, feature, kind, count(*) AS jobs, sum(cost_usd) AS cost FROM media_jobs
             WHERE status = 'succeeded' GROUP BY user_name, feature, kind ORDER BY user_name, feature, kind",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.iter().map(|r| MediaUsage { user: r.get("user_name"), feature: r.get("feature"), kind: r.get("kind"), jobs: r.get("jobs"), cost_usd: r.get("cost") }).collect())
    }
}

/// One line of the media usage report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaUsage {
    pub user: String,
    pub feature: Option<String>,
    pub kind: String,
    pub jobs: i64,
    pub cost_usd: Option<f64>,
}
