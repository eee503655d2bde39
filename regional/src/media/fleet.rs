//! A worker process's media side: its stores, its HTTP client and the media deployments'
//! breakers, shared by all its workers, and how they and the webhook dispatcher start.

use std::sync::Arc;
use std::time::Duration;

use meridian_shared::config::Config;
use meridian_shared::media::fleet::MediaFleet;

use super::queue::{self, Queue};
use super::webhook::Dispatcher;
use super::worker::Worker;
use crate::data_plane::Stores;
use crate::media_plane::redis_url;

pub struct Process {
    pub config: Arc<Config>,
    pub db: crate::db::Db,
    objects: crate::objects::ObjectStore,
    keyring: Arc<crate::crypto::Keyring>,
    http: reqwest::Client,
    fleet: Arc<MediaFleet>,
    redis_url: String,
}

impl Process {
    pub async fn open(config: Arc<Config>) -> Result<Process, String> {
        let media = config.media.as_ref().ok_or("media workers need a media section")?;
        let dp = config.data_plane.as_ref().ok_or("media workers need a data_plane section")?;
        let redis_url = redis_url(dp)?;
        let fleet = Arc::new(MediaFleet::new(media, config.breaker.into()));
        let Stores { db, objects, keyring } = Stores::open(dp).await.map_err(|e| format!("data plane: {e}"))?;
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
        Ok(Process { config, db, objects, keyring: Arc::new(keyring), http, fleet, redis_url })
    }

    fn host() -> String {
        std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into())
    }

    async fn queues(&self) -> Result<Queue, String> {
        let redis = queue::connect(&self.redis_url).await.map_err(|e| format!("cannot connect to Redis: {e}"))?;
        Ok(Queue::new(redis, self.config.server.region.as_str()))
    }

    /// `n` workers of `queue`, each its own consumer of the group — and its own Redis
    /// connection, so its blocking reads never hold up another worker's heartbeats.
    pub async fn workers(&self, queue: &'static str, n: u32) -> Result<Vec<Worker>, String> {
        let mut workers = Vec::new();
        for i in 0..n {
            let queues = self.queues().await?;
            queues.ensure_group(queue).await.map_err(|e| format!("media queue {queue}: {e}"))?;
            workers.push(Worker {
                name: format!("{}-{}-{queue}-{i}", Self::host(), std::process::id()),
                queue,
                queues,
                db: self.db.clone(),
                keyring: self.keyring.clone(),
                objects: self.objects.clone(),
                config: self.config.clone(),
                http: self.http.clone(),
                fleet: self.fleet.clone(),
                usage: Arc::new(crate::usage::emit),
            });
        }
        Ok(workers)
    }

    /// The process's webhook dispatcher (every worker process runs one; together they
    /// share the webhook stream).
    pub async fn dispatcher(&self) -> Result<Dispatcher, String> {
        Ok(Dispatcher {
            name: format!("{}-{}-webhooks", Self::host(), std::process::id()),
            queues: self.queues().await?,
            http: self.http.clone(),
            config: self.config.clone(),
            db: self.db.clone(),
        })
    }
}
