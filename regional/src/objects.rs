//! Object storage (S3 or any S3-compatible server) for original documents and generated
//! media. One bucket per region; every key is under the tenant's prefix
//! (`tenants/{tenant}/...`), built here and nowhere else, so no caller can write outside
//! its tenant. Documents and uploads are sealed with the tenant's data key before they
//! leave the process; generated media are stored as they are (clients download them with
//! presigned URLs).

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use meridian_shared::config::ObjectStoreConfig;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object store config: {0}")]
    Config(String),
    #[error("object store: {0}")]
    S3(String),
    #[error("object not found: {0}")]
    NotFound(String),
}

fn s3_err<E: std::fmt::Debug>(e: aws_sdk_s3::error::SdkError<E>) -> ObjectError {
    ObjectError::S3(match &e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => format!("{:?}", s.err()),
        other => format!("{other:?}").chars().take(300).collect(),
    })
}

#[derive(Clone)]
pub struct ObjectStore {
    client: Client,
    bucket: String,
}

/// The one place a tenant's object key is made: `tenants/{tenant}/{kind}/{id}`.
pub fn tenant_key(tenant: &str, kind: &str, id: &str) -> String {
    format!("tenants/{tenant}/{kind}/{id}")
}

impl ObjectStore {
    pub fn new(cfg: &ObjectStoreConfig, env: impl Fn(&str) -> Option<String>) -> Result<ObjectStore, ObjectError> {
        let ak = env(&cfg.access_key_env).ok_or_else(|| ObjectError::Config(format!("objects.access_key_env: environment variable {} is not set", cfg.access_key_env)))?;
        let sk = env(&cfg.secret_key_env).ok_or_else(|| ObjectError::Config(format!("objects.secret_key_env: environment variable {} is not set", cfg.secret_key_env)))?;
        let mut b = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(Credentials::new(ak, sk, None, None, "meridian-config"))
            .force_path_style(cfg.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        if let Some(ep) = &cfg.endpoint {
            b = b.endpoint_url(ep);
        }
        Ok(ObjectStore { client: Client::from_conf(b.build()), bucket: cfg.bucket.clone() })
    }

    /// Creates the bucket unless it exists (safe to call on every start).
    pub async fn ensure_bucket(&self) -> Result<(), ObjectError> {
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() {
            return Ok(());
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let owned = e.as_service_error().map(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()).unwrap_or(false);
                if owned {
                    Ok(())
                } else {
                    Err(s3_err(e))
                }
            }
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), ObjectError> {
        self.client.put_object().bucket(&self.bucket).key(key).content_type(content_type).body(ByteStream::from(bytes)).send().await.map_err(s3_err)?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| {
            if e.as_service_error().map(|s| s.is_no_such_key()).unwrap_or(false) {
                ObjectError::NotFound(key.to_string())
            } else {
                s3_err(e)
            }
        })?;
        let body = out.body.collect().await.map_err(|e| ObjectError::S3(e.to_string()))?;
        Ok(body.into_bytes().to_vec())
    }

    /// A time-limited GET URL for `key` (media results go to clients this way, straight
    /// from the region's object store).
    pub async fn presign_get(&self, key: &str, ttl: std::time::Duration) -> Result<String, ObjectError> {
        let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(|e| ObjectError::Config(e.to_string()))?;
        let req = self.client.get_object().bucket(&self.bucket).key(key).presigned(cfg).await.map_err(s3_err)?;
        Ok(req.uri().to_string())
    }

    pub async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(s3_err)?;
        Ok(())
    }

    /// Every key under `prefix` (for tenant deletion and tests).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).set_continuation_token(token).send().await.map_err(s3_err)?;
            keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match out.next_continuation_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(keys),
            }
        }
    }
}
