//! The regional data plane's real backing services for one region: a PostgreSQL cluster
//! (with pgvector), Redis and an S3-compatible server, plus the `data_plane:` config
//! section and the secrets it names, ready to hand to a regional gateway.

use crate::services::{models_dir, Postgres, Redis, S3};

pub struct DataServices {
    pub pg: Postgres,
    pub redis: Redis,
    pub s3: S3,
    pub database_url: String,
    pub master_key: String,
    pub bucket: String,
}

impl DataServices {
    pub async fn start(region: &str) -> DataServices {
        let pg = Postgres::start();
        let database_url = pg.app_database("meridian").await;
        DataServices {
            pg,
            redis: Redis::start(),
            s3: S3::start(),
            database_url,
            master_key: format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>()),
            bucket: format!("meridian-{region}"),
        }
    }

    /// The `data_plane:` section; `extra` is appended inside it (indented two spaces).
    pub fn yaml(&self, extra: &str) -> String {
        format!(
            "data_plane:\n  database_url_env: MERIDIAN_DATABASE_URL\n  redis_url_env: MERIDIAN_REDIS_URL\n  master_key_env: MERIDIAN_MASTER_KEY\n  models_dir: \"{models}\"\n  objects: {{ endpoint: \"{s3}\", bucket: {bucket}, access_key_env: MERIDIAN_S3_ACCESS_KEY, secret_key_env: MERIDIAN_S3_SECRET_KEY }}\n  ingest: {{ allow_private_urls: true, max_document_bytes: 200000 }}\n{extra}",
            models = models_dir().display(),
            s3 = self.s3.endpoint(),
            bucket = self.bucket,
        )
    }

    /// Every object key under `prefix` in this region's bucket.
    pub async fn s3_keys(&self, prefix: &str) -> Vec<String> {
        let cfg = meridian_shared::config::ObjectStoreConfig {
            endpoint: Some(self.s3.endpoint()),
            bucket: self.bucket.clone(),
            region: "us-east-1".into(),
            access_key_env: "A".into(),
            secret_key_env: "S".into(),
            path_style: true,
        };
        let store = meridian_regional::objects::ObjectStore::new(&cfg, |v| Some(if v == "A" { self.s3.access_key.clone() } else { self.s3.secret_key.clone() })).unwrap();
        store.list(prefix).await.unwrap_or_default()
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MERIDIAN_DATABASE_URL".into(), self.database_url.clone()),
            ("MERIDIAN_REDIS_URL".into(), self.redis.url()),
            ("MERIDIAN_MASTER_KEY".into(), self.master_key.clone()),
            ("MERIDIAN_S3_ACCESS_KEY".into(), self.s3.access_key.clone()),
            ("MERIDIAN_S3_SECRET_KEY".into(), self.s3.secret_key.clone()),
        ]
    }
}

/// Database `name` in `pg`, migrated, with `tenant` registered (region eu) and its data
/// key under a fixed test master key: what the benches and store-level tests start from.
pub async fn tenant_database(pg: &Postgres, name: &str, tenant: &str) -> (meridian_regional::db::Db, meridian_regional::crypto::Keyring, meridian_regional::crypto::DataKey) {
    let db = meridian_regional::db::Db::connect(&pg.app_database(name).await, 4).await.unwrap();
    db.migrate().await.unwrap();
    db.create_tenant(tenant, "eu").await.unwrap();
    let keyring = meridian_regional::crypto::Keyring::from_hex(&"ab".repeat(32)).unwrap();
    let key = db.data_key(&keyring, tenant).await.unwrap();
    (db, keyring, key)
}
