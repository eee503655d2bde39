//! Supervising a running job: the provider work runs while the worker keeps the job's
//! lease and tenant slot alive (a heartbeat on absolute deadlines, so frequent progress
//! events never postpone it), publishes progress, stops when the job is cancelled or
//! taken over, and on shutdown lets it finish within the grace period or hands it back.

use std::time::Duration;

use meridian_shared::config::MediaConfig;
use meridian_shared::media::fleet::MediaFleet;
use meridian_shared::media::{JobEvent, JobStatus, MediaRequest};
use tokio::sync::watch;

use super::events::publish;
use super::execute::{Executor, Failure, Produced};
use super::queue::{Delivery, Queue};
use super::store::JobStore;
use crate::clock::unix_secs as now_s;
use crate::db::Db;

/// How the supervised work ended.
pub enum Ending {
    Done(Result<Produced, Failure>),
    /// Cancelled or taken over: the result is not ours to store.
    Lost,
    /// Shutting down past the grace period: give the job back.
    Returned,
}

fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What supervising a job needs from the worker running it.
pub struct Supervisor<'a> {
    /// The worker's name: the lease holder.
    pub worker: &'a str,
    /// The queue the job came from (`image`, `audio`, `video`).
    pub queue: &'static str,
    pub queues: &'a Queue,
    pub db: &'a Db,
    pub http: &'a reqwest::Client,
    pub media: &'a MediaConfig,
    pub fleet: &'a MediaFleet,
    pub region: &'a str,
}

impl Supervisor<'_> {
    /// Runs the request while keeping the lease alive and watching for cancellation and
    /// shutdown.
    pub async fn run(&self, d: &Delivery, req: &MediaRequest, upload: Option<&[u8]>, stop: &mut watch::Receiver<bool>) -> Ending {
        let q = self.media.queue;
        let (progress_tx, mut progress_rx) = watch::channel(None::<f32>);
        let secret = env_secret;
        let exec = Executor { cfg: self.media, fleet: self.fleet, http: self.http, secret: &secret, region: self.region };
        let run = exec.run(req, upload, &progress_tx);
        tokio::pin!(run);
        // Absolute deadlines, so that frequent progress events never postpone them.
        let beat = Duration::from_millis((q.visibility_ms / 3).max(50));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut grace: Option<tokio::time::Instant> = None;
        let store = JobStore { db: self.db };
        loop {
            tokio::select! {
                result = &mut run => return Ending::Done(result),
                _ = tokio::time::sleep_until(grace.unwrap_or_else(tokio::time::Instant::now)), if grace.is_some() => return Ending::Returned,
                _ = heartbeat.tick() => {
                    let p = *progress_rx.borrow();
                    match store.heartbeat(&d.tenant, d.job, self.worker, q.visibility_ms, p).await {
                        Ok(false) => return Ending::Lost,
                        Ok(true) => {
                            let _ = self.queues.take_slot(&d.tenant, d.job, u32::MAX, q.visibility_ms).await;
                            let _ = self.queues.touch(self.queue, self.worker, &d.entry).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
                changed = progress_rx.changed() => {
                    let latest = *progress_rx.borrow_and_update();
                    if changed.is_ok() {
                        if let Some(p) = latest {
                            let mut e = JobEvent::new("progress", &d.job.to_string(), &d.tenant, JobStatus::Running, now_s());
                            e.progress = Some(p);
                            publish(self.queues, &e).await;
                        }
                    }
                }
                r = stop.changed(), if grace.is_none() => {
                    if r.is_err() || *stop.borrow() {
                        grace = Some(tokio::time::Instant::now() + Duration::from_millis(q.shutdown_grace_ms));
                    }
                }
            }
        }
    }
}
