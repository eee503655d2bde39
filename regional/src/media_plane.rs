//! The API process's side of media jobs: the queues it enqueues to and the hub that fans
//! job events out to its subscribers. Opened at start-up when the config has `media:`
//! (which needs `data_plane:` with Redis); `serve` may also run workers in-process
//! (`media.queue.in_process_workers`), otherwise `meridian-regional worker --media …`
//! processes do the work.

use crate::media::events::Hub;
use crate::media::queue::{self, Queue};
use meridian_shared::config::{Config, DataPlaneConfig};

pub const QUEUES: [&str; 3] = ["image", "audio", "video"];

pub struct MediaPlane {
    pub queues: Queue,
    pub hub: Hub,
}

/// The Redis URL media needs.
pub fn redis_url(dp: &DataPlaneConfig) -> Result<String, String> {
    let var = dp.redis_url_env.as_ref().ok_or("media needs data_plane.redis_url_env (the queues are Redis streams)")?;
    std::env::var(var).map_err(|_| format!("data_plane.redis_url_env: environment variable {var} is not set"))
}

impl MediaPlane {
    pub async fn open(cfg: &Config, dp: &DataPlaneConfig) -> Result<MediaPlane, String> {
        let url = redis_url(dp)?;
        let queues = Queue::new(queue::connect(&url).await.map_err(|e| format!("cannot connect to Redis: {e}"))?, cfg.server.region.as_str());
        for q in QUEUES {
            queues.ensure_group(q).await.map_err(|e| format!("media queue {q}: {e}"))?;
        }
        let hub = Hub::default();
        hub.clone().run(&url, queues.events_pattern()).await.map_err(|e| format!("subscribing to job events: {e}"))?;
        Ok(MediaPlane { queues, hub })
    }
}
