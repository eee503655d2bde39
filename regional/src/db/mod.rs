//! PostgreSQL (with pgvector): the regional store of tenants, knowledge bases, documents,
//! chunks, chatbots and usage. Tenant isolation is enforced by the database itself:
//! every tenant-owned table has forced row-level security keyed by the transaction-local
//! setting `meridian.tenant`, which [`Db::tenant_tx`] sets. Schema changes are sqlx
//! migrations in `regional/migrations/`, applied at start-up.

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

#[derive(Clone)]
pub struct Db {
    pool: PgPool,
}

/// An API key as mirrored into `api_keys`: its name, the SHA-256 of the key, its roles.
pub struct ApiKeyRow {
    pub name: String,
    pub sha256: Vec<u8>,
    pub roles: Option<Vec<String>>,
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
        let pool = PgPoolOptions::new().max_connections(max_connections).connect(url).await?;
        Ok(Db { pool })
    }

    /// Applies the pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("./migrations").run(&self.pool).await
    }

    /// A transaction that sees and may write only `tenant`'s rows.
    pub async fn tenant_tx(&self, tenant: &str) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('meridian.tenant', $1, true)").bind(tenant).execute(&mut *tx).await?;
        Ok(tx)
    }

    /// A transaction with no tenant: row-level security shows it nothing.
    pub async fn untenanted_tx(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// The tenant's data key: unwrapped from `tenant_keys`, or created and stored. Requests
    /// racing to create the first key all end up with the one that was stored.
    pub async fn data_key(&self, keyring: &crate::crypto::Keyring, tenant: &str) -> Result<crate::crypto::DataKey, DbError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let select = "SELECT wrapped FROM tenant_keys WHERE tenant_id = $1";
        let mut wrapped: Option<Vec<u8>> = sqlx::query_scalar(select).bind(tenant).fetch_optional(&mut *tx).await?;
        if wrapped.is_none() {
            let (_, fresh) = keyring.new_data_key(tenant);
            sqlx::query("INSERT INTO tenant_keys (tenant_id, wrapped) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING").bind(tenant).bind(fresh).execute(&mut *tx).await?;
            wrapped = sqlx::query_scalar(select).bind(tenant).fetch_optional(&mut *tx).await?;
        }
        tx.commit().await?;
        let wrapped = wrapped.ok_or_else(|| DbError::Sql(sqlx::Error::RowNotFound))?;
        Ok(keyring.unwrap(tenant, &wrapped)?)
    }

    /// Crypto-shredding: deletes the tenant's wrapped data key. Everything sealed under it
    /// becomes unreadable; a later [`Db::data_key`] makes a new, unrelated key.
    pub async fn shred_tenant_key(&self, tenant: &str) -> Result<bool, DbError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let n = sqlx::query("DELETE FROM tenant_keys WHERE tenant_id = $1").bind(tenant).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Deletes a tenant and, by cascade, every row it owns: knowledge, chunks and their
    /// postings, chatbots, semantic-cache entries, usage, users, keys. (Its objects in S3
    /// are sealed under the data key deleted here, so they are unreadable even before
    /// they are removed.)
    pub async fn delete_tenant(&self, tenant: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.tenant_tx(tenant).await?;
        let n = sqlx::query("DELETE FROM tenants WHERE id = $1").bind(tenant).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Registers a tenant homed in `region` (its own row is visible only to itself).
    pub async fn create_tenant(&self, id: &str, region: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.tenant_tx(id).await?;
        sqlx::query("INSERT INTO tenants (id, region) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING").bind(id).bind(region).execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Mirrors a tenant's API keys from the config: digests, names and roles, so reports
    /// and the dashboard can join on them, and the digest directory. Config keys no
    /// longer in the config are removed; keys issued through the admin API are untouched.
    pub async fn sync_api_keys(&self, tenant: &str, keys: &[ApiKeyRow]) -> Result<(), sqlx::Error> {
        let mut tx = self.tenant_tx(tenant).await?;
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        sqlx::query("DELETE FROM key_directory WHERE sha256 IN (SELECT sha256 FROM api_keys WHERE source = 'config' AND NOT (name = ANY($1)))").bind(&names).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM api_keys WHERE source = 'config' AND NOT (name = ANY($1))").bind(&names).execute(&mut *tx).await?;
        for ApiKeyRow { name, sha256: digest, roles } in keys {
            sqlx::query("INSERT INTO api_keys (tenant_id, name, sha256, roles) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, name) DO UPDATE SET sha256 = excluded.sha256, roles = excluded.roles WHERE api_keys.source = 'config'")
                .bind(tenant)
                .bind(name)
                .bind(digest)
                .bind(roles)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO key_directory (sha256, tenant_id) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING").bind(digest).bind(tenant).execute(&mut *tx).await?;
        }
        tx.commit().await
    }
}
