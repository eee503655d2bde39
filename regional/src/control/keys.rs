//! API keys in PostgreSQL: issued, listed, changed, rotated and revoked through the admin
//! API, one transaction per mutation with its audit record; and resolved from a
//! presented secret's digest. Only the SHA-256 of a secret is ever stored.

use meridian_shared::api::GatewayError;
use meridian_shared::auth::{hash_api_key, key_prefix, new_api_key, ApiKeyDigest, Region};
use meridian_shared::control::key_cache::ResolvedKey;
use meridian_shared::control::keys::{if_match, CreateKey, KeyView, RotateKey, UpdateKey};
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::audit::{self, Entry};
use crate::db::Db;

/// Who asks, and for which request (for the audit record).
pub struct Actor {
    pub tenant: String,
    pub name: String,
    pub request_id: Option<String>,
}

impl Actor {
    fn entry<'a>(&self, action: &'a str, object_id: Uuid, before: Option<&'a serde_json::Value>, after: Option<&'a serde_json::Value>) -> Entry<'a> {
        Entry { actor: self.name.clone(), action, object_type: "api_key", object_id: object_id.to_string(), before, after, request_id: self.request_id.clone() }
    }
}

/// A created (or rotated) key: how it is shown, its secret once, and whether this was
/// a replay of an earlier create with the same Idempotency-Key (then no secret).
pub struct Issued {
    pub key: KeyView,
    pub secret: Option<String>,
    pub replayed: bool,
}

const COLUMNS: &str = "id, name, prefix, roles, source, EXTRACT(EPOCH FROM created_at)::bigint AS created_at, created_by,
    EXTRACT(EPOCH FROM expires_at)::bigint AS expires_at, EXTRACT(EPOCH FROM revoked_at)::bigint AS revoked_at, version";

fn view(r: &sqlx::postgres::PgRow) -> KeyView {
    KeyView {
        id: r.get::<Uuid, _>("id").to_string(),
        object: "api_key".into(),
        name: r.get("name"),
        prefix: r.get("prefix"),
        roles: r.get("roles"),
        source: r.get("source"),
        created_at: r.get("created_at"),
        created_by: r.get("created_by"),
        expires_at: r.get("expires_at"),
        revoked_at: r.get("revoked_at"),
        version: r.get("version"),
    }
}

fn json(v: &KeyView) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn store_error(e: sqlx::Error) -> GatewayError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => GatewayError::Conflict("a key with this name already exists in this tenant".into()),
        _ => {
            tracing::error!(error = %e, "key store failure");
            GatewayError::Unavailable("the key store is unavailable; try again".into())
        }
    }
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::ResourceNotFound(format!("key {id:?} does not exist"))
}

/// Seconds from now → a timestamp expression's argument (`None`: never).
fn expiry(s: Option<u64>) -> Option<i64> {
    s.filter(|s| *s > 0).map(|s| s as i64)
}

pub struct KeyStore<'a> {
    pub db: &'a Db,
    pub region: Region,
}

impl KeyStore<'_> {
    async fn locked(tx: &mut Transaction<'static, Postgres>, id: &str) -> Result<KeyView, GatewayError> {
        let uuid: Uuid = id.parse().map_err(|_| not_found(id))?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE")).bind(uuid).fetch_optional(&mut **tx).await.map_err(store_error)?;
        row.as_ref().map(view).ok_or_else(|| not_found(id))
    }

    fn changeable(k: &KeyView) -> Result<(), GatewayError> {
        if k.source != "admin" {
            return Err(GatewayError::Conflict("this key comes from the config file; change it there".into()));
        }
        if k.revoked_at.is_some() {
            return Err(GatewayError::Conflict("this key is revoked".into()));
        }
        Ok(())
    }

    fn precondition(k: &KeyView, if_match_header: Option<&str>) -> Result<(), GatewayError> {
        match if_match_header {
            Some(h) if if_match(h, k.version) => Ok(()),
            Some(_) => Err(GatewayError::PreconditionFailed(format!("the key changed since you read it (its ETag is now {})", k.etag()))),
            None => Err(GatewayError::PreconditionRequired("send If-Match with the key's ETag, so no change is lost".into())),
        }
    }

    /// The tenant's transaction with key `id` locked, if it may be changed: issued here,
    /// not revoked, and — with `If-Match` (required when `must_match`) — not changed since.
    async fn changing(&self, tenant: &str, id: &str, if_match_header: Option<&str>, must_match: bool) -> Result<(Transaction<'static, Postgres>, KeyView, Uuid), GatewayError> {
        let mut tx = self.db.tenant_tx(tenant).await.map_err(store_error)?;
        let before = Self::locked(&mut tx, id).await?;
        Self::changeable(&before)?;
        if must_match || if_match_header.is_some() {
            Self::precondition(&before, if_match_header)?;
        }
        let uuid: Uuid = before.id.parse().map_err(|_| not_found(id))?;
        Ok((tx, before, uuid))
    }

    pub async fn create(&self, who: &Actor, req: &CreateKey, idempotency_key: Option<&str>, random: [u8; 32]) -> Result<Issued, GatewayError> {
        let mut tx = self.db.tenant_tx(&who.tenant).await.map_err(store_error)?;
        let request_digest = Sha256::digest(serde_json::to_vec(req).unwrap_or_default()).to_vec();
        if let Some(k) = idempotency_key {
            let prior = sqlx::query("SELECT request, object_id FROM admin_idempotency WHERE key = $1").bind(k).fetch_optional(&mut *tx).await.map_err(store_error)?;
            if let Some(p) = prior {
                if p.get::<Vec<u8>, _>("request") != request_digest {
                    return Err(GatewayError::Conflict("this Idempotency-Key was used for another request".into()));
                }
                let id: Uuid = p.get("object_id");
                let key = Self::locked(&mut tx, &id.to_string()).await?;
                return Ok(Issued { key, secret: None, replayed: true });
            }
        }
        let secret = new_api_key(self.region, random);
        let digest = hash_api_key(&secret);
        let row = sqlx::query(&format!(
            "INSERT INTO api_keys (tenant_id, name, sha256, roles, source, prefix, expires_at, created_by)
             VALUES ($1, $2, $3, $4, 'admin', $5, now() + make_interval(secs => $6), $7) RETURNING {COLUMNS}"
        ))
        .bind(&who.tenant)
        .bind(&req.name)
        .bind(digest.0.as_slice())
        .bind(&req.roles)
        .bind(key_prefix(&secret))
        .bind(expiry(req.expires_in_s).map(|s| s as f64))
        .bind(&who.name)
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let key = view(&row);
        let id: Uuid = row.get("id");
        sqlx::query("INSERT INTO key_directory (sha256, tenant_id) VALUES ($1, $2)").bind(digest.0.as_slice()).bind(&who.tenant).execute(&mut *tx).await.map_err(store_error)?;
        if let Some(k) = idempotency_key {
            sqlx::query("INSERT INTO admin_idempotency (tenant_id, key, request, object_id) VALUES ($1, $2, $3, $4)").bind(&who.tenant).bind(k).bind(&request_digest).bind(id).execute(&mut *tx).await.map_err(store_error)?;
        }
        audit::append(&mut tx, &who.tenant, who.entry("key.create", id, None, Some(&json(&key)))).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Issued { key, secret: Some(secret), replayed: false })
    }

    /// A page of the tenant's keys, newest first, after the key `after` (a cursor).
    pub async fn list(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<(Vec<KeyView>, bool), GatewayError> {
        let mut tx = self.db.tenant_tx(tenant).await.map_err(store_error)?;
        let after: Option<Uuid> = match after {
            Some(a) => Some(a.parse().map_err(|_| GatewayError::invalid_param("`after` must be a key id from an earlier page", "after"))?),
            None => None,
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys
             WHERE $1::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM api_keys WHERE id = $1)
             ORDER BY api_keys.created_at DESC, api_keys.id DESC LIMIT $2"
        ))
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        let more = rows.len() > limit;
        Ok((rows.iter().take(limit).map(view).collect(), more))
    }

    pub async fn get(&self, tenant: &str, id: &str) -> Result<KeyView, GatewayError> {
        let uuid: Uuid = id.parse().map_err(|_| not_found(id))?;
        let mut tx = self.db.tenant_tx(tenant).await.map_err(store_error)?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1")).bind(uuid).fetch_optional(&mut *tx).await.map_err(store_error)?;
        row.as_ref().map(view).ok_or_else(|| not_found(id))
    }

    pub async fn update(&self, who: &Actor, id: &str, patch: &UpdateKey, if_match_header: Option<&str>) -> Result<KeyView, GatewayError> {
        let (mut tx, before, uuid) = self.changing(&who.tenant, id, if_match_header, true).await?;
        let row = sqlx::query(&format!(
            "UPDATE api_keys SET name = COALESCE($2, name), roles = CASE WHEN $3 THEN $4 ELSE roles END,
                 expires_at = CASE WHEN $5 THEN now() + make_interval(secs => $6) ELSE expires_at END, version = version + 1
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(uuid)
        .bind(&patch.name)
        .bind(patch.roles.is_some())
        .bind(&patch.roles)
        .bind(patch.expires_in_s.is_some())
        .bind(expiry(patch.expires_in_s).map(|s| s as f64))
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let after = view(&row);
        audit::append(&mut tx, &who.tenant, who.entry("key.update", uuid, Some(&json(&before)), Some(&json(&after)))).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(after)
    }

    pub async fn revoke(&self, who: &Actor, id: &str, if_match_header: Option<&str>) -> Result<KeyView, GatewayError> {
        let (mut tx, before, uuid) = self.changing(&who.tenant, id, if_match_header, false).await?;
        let row = sqlx::query(&format!("UPDATE api_keys SET revoked_at = now(), version = version + 1 WHERE id = $1 RETURNING {COLUMNS}")).bind(uuid).fetch_one(&mut *tx).await.map_err(store_error)?;
        sqlx::query("DELETE FROM api_key_overlaps WHERE key_id = $1").bind(uuid).execute(&mut *tx).await.map_err(store_error)?;
        let after = view(&row);
        audit::append(&mut tx, &who.tenant, who.entry("key.revoke", uuid, Some(&json(&before)), Some(&json(&after)))).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(after)
    }

    /// A new secret for the key; the previous one keeps working for the overlap.
    pub async fn rotate(&self, who: &Actor, id: &str, req: &RotateKey, if_match_header: Option<&str>, random: [u8; 32]) -> Result<Issued, GatewayError> {
        let overlap = req.overlap()?;
        let (mut tx, before, uuid) = self.changing(&who.tenant, id, if_match_header, false).await?;
        let secret = new_api_key(self.region, random);
        let digest = hash_api_key(&secret);
        if overlap > 0 {
            sqlx::query("INSERT INTO api_key_overlaps (tenant_id, key_id, sha256, valid_until) SELECT tenant_id, id, sha256, now() + make_interval(secs => $2) FROM api_keys WHERE id = $1")
                .bind(uuid)
                .bind(overlap as f64)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        let row = sqlx::query(&format!("UPDATE api_keys SET sha256 = $2, prefix = $3, version = version + 1 WHERE id = $1 RETURNING {COLUMNS}"))
            .bind(uuid)
            .bind(digest.0.as_slice())
            .bind(key_prefix(&secret))
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query("INSERT INTO key_directory (sha256, tenant_id) VALUES ($1, $2)").bind(digest.0.as_slice()).bind(&who.tenant).execute(&mut *tx).await.map_err(store_error)?;
        let key = view(&row);
        audit::append(&mut tx, &who.tenant, who.entry("key.rotate", uuid, Some(&json(&before)), Some(&json(&key)))).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Issued { key, secret: Some(secret), replayed: false })
    }

    /// The key behind a presented secret's digest, if it is valid now (not revoked, not
    /// expired, or a rotated-away secret still in its overlap).
    pub async fn resolve(&self, digest: &ApiKeyDigest) -> Result<Option<ResolvedKey>, sqlx::Error> {
        let mut tx = self.db.untenanted_tx().await?;
        let tenant: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM key_directory WHERE sha256 = $1").bind(digest.0.as_slice()).fetch_optional(&mut *tx).await?;
        drop(tx);
        let Some(tenant) = tenant else { return Ok(None) };
        let mut tx = self.db.tenant_tx(&tenant).await?;
        let row = sqlx::query(
            "SELECT name, roles FROM api_keys WHERE sha256 = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
             UNION ALL
             SELECT k.name, k.roles FROM api_key_overlaps o JOIN api_keys k ON k.id = o.key_id
             WHERE o.sha256 = $1 AND o.valid_until > now() AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
             LIMIT 1",
        )
        .bind(digest.0.as_slice())
        .fetch_optional(&mut *tx)
        .await?;
        Ok(row.map(|r| ResolvedKey { tenant, key_name: r.get("name"), roles: r.get("roles") }))
    }
}
