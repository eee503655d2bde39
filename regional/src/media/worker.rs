//! A media worker: `meridian-regional worker --media image|audio|video`. It reads its
//! queue's stream as one consumer of the group, and for each delivery:
//!
//! 1. takes one of the tenant's concurrency slots (else the job waits, briefly delayed);
//! 2. claims the job in PostgreSQL with a lease (else the delivery is stale: dropped);
//! 3. runs it on the model's deployments with failover, keeping the lease alive and
//!    publishing progress; stops if the job is cancelled or taken over meanwhile;
//! 4. stores the outputs in the object store under the tenant's prefix (deterministic
//!    keys, so a re-run overwrites rather than duplicates) and marks the job succeeded —
//!    a conditional update only the lease holder can make, so a job succeeds once;
//! 5. or schedules a retry with exponential backoff, or after `max_attempts` fails the job
//!    and copies it to the dead-letter stream;
//! 6. acknowledges the delivery.
//!
//! Deliveries left unacknowledged by a dead worker are reclaimed after the visibility
//! timeout; jobs Redis forgot (a restart without persistence) are re-enqueued from
//! PostgreSQL by the reconciler. On shutdown a worker finishes its job within the grace
//! period, or returns it to the queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_shared::config::{Config, MediaConfig};
use meridian_shared::media::fleet::MediaFleet;
use meridian_shared::media::{JobEvent, JobStatus, MediaKind};
use meridian_shared::usage::UsageEvent;
use tokio::sync::watch;
use tracing::Instrument;

use super::events::publish;
use super::execute::Failure;
use super::queue::{Delivery, Queue, Slot};
use super::store::{JobStore, StoredOutput};
use super::supervise::{Ending, Supervisor};
use crate::clock::unix_secs as now_s;
use crate::crypto::Keyring;
use crate::db::Db;
use crate::objects::{tenant_key, ObjectStore};

/// Everything a worker needs; cheap to clone into tasks.
#[derive(Clone)]
pub struct Worker {
    pub name: String,
    /// `image`, `audio` or `video`.
    pub queue: &'static str,
    pub queues: Queue,
    pub db: Db,
    pub keyring: Arc<Keyring>,
    pub objects: ObjectStore,
    pub config: Arc<Config>,
    pub http: reqwest::Client,
    /// The media deployments' breakers, shared by the process's workers.
    pub fleet: Arc<MediaFleet>,
    /// Records a usage event (the binary's usage pipeline).
    pub usage: Arc<dyn Fn(UsageEvent) + Send + Sync>,
}

/// The media kinds a queue runs.
pub fn kinds_of(queue: &str) -> Vec<&'static str> {
    [MediaKind::Image, MediaKind::Speech, MediaKind::Transcription, MediaKind::Video].into_iter().filter(|k| k.queue() == queue).map(MediaKind::as_str).collect()
}

impl Worker {
    fn media(&self) -> &MediaConfig {
        self.config.media.as_ref().expect("workers run only with a media section")
    }

    fn region(&self) -> &str {
        self.config.server.region.as_str()
    }

    fn tenants(&self) -> Vec<String> {
        self.config.tenants.iter().filter(|t| t.region == self.config.server.region).map(|t| t.id.clone()).collect()
    }

    /// Publishes the event; a final one also goes to the tenant's webhook (queued first,
    /// so whoever sees the event can count on the call being on its way).
    async fn announce(&self, e: JobEvent) {
        if e.status.is_final() && self.config.tenant(&e.tenant).is_some_and(|t| t.webhook.is_some()) {
            super::webhook::enqueue(&self.queues, &e).await;
        }
        publish(&self.queues, &e).await;
    }

    /// Runs until `stop` turns true, then finishes (or returns) the job in hand.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let q = self.media().queue;
        if let Err(e) = self.queues.ensure_group(self.queue).await {
            tracing::error!(error = %e, "cannot create the consumer group");
        }
        let (mut last_reclaim, mut last_reconcile) = (Instant::now() - Duration::from_secs(3600), Instant::now() - Duration::from_secs(3600));
        let sweep = Duration::from_millis((q.visibility_ms / 2).max(100));
        tracing::info!(worker = %self.name, queue = self.queue, "media worker started");
        while !*stop.borrow() {
            if let Err(e) = self.queues.promote_due(self.queue).await {
                tracing::warn!(error = %e, "promoting retries failed");
            }
            let mut batch = Vec::new();
            if last_reclaim.elapsed() >= sweep {
                last_reclaim = Instant::now();
                match self.queues.reclaim(self.queue, &self.name, q.visibility_ms, 10).await {
                    Ok(d) => batch.extend(d),
                    Err(e) => tracing::warn!(error = %e, "reclaiming deliveries failed"),
                }
            }
            if last_reconcile.elapsed() >= Duration::from_millis(q.visibility_ms) {
                last_reconcile = Instant::now();
                self.reconcile().await;
            }
            if batch.is_empty() {
                match self.queues.read(self.queue, &self.name, 1, 500).await {
                    Ok(d) => batch.extend(d),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the queue failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = stop.changed() => {}
                        }
                    }
                }
            }
            for d in batch {
                self.handle(d, &mut stop).await;
            }
        }
        tracing::info!(worker = %self.name, "media worker stopped");
    }

    /// Re-enqueues jobs PostgreSQL says need a delivery (Redis lost them, or their worker died).
    async fn reconcile(&self) {
        let idle = self.media().queue.visibility_ms;
        let kinds = kinds_of(self.queue);
        for tenant in self.tenants() {
            match (JobStore { db: &self.db }).stale(&tenant, &kinds, idle).await {
                Ok(jobs) => {
                    for (id, _) in jobs {
                        tracing::info!(job = %id, tenant, "re-enqueueing a job with no live delivery");
                        if let Err(e) = self.queues.enqueue(self.queue, &tenant, id).await {
                            tracing::warn!(error = %e, "re-enqueue failed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, tenant, "reconcile query failed"),
            }
        }
    }

    async fn handle(&self, d: Delivery, stop: &mut watch::Receiver<bool>) {
        let q = self.media().queue;
        let ack = |w: &Worker, entry: String| {
            let queues = w.queues.clone();
            let queue = w.queue;
            async move {
                if let Err(e) = queues.ack(queue, &entry).await {
                    tracing::warn!(error = %e, "ack failed");
                }
            }
        };
        if self.config.tenant(&d.tenant).is_none_or(|t| t.region != self.config.server.region) {
            tracing::error!(tenant = %d.tenant, "a job of a tenant not homed in this region: dropped");
            return ack(self, d.entry).await;
        }
        match self.queues.take_slot(&d.tenant, d.job, q.per_tenant_concurrency, q.visibility_ms).await {
            Ok(Slot::Taken) => {}
            Ok(Slot::Held) => {
                // A duplicate delivery of a job running elsewhere (its worker keeps the slot
                // and the lease; if it dies, the reconciler re-enqueues from PostgreSQL).
                return ack(self, d.entry).await;
            }
            Ok(Slot::Full) => {
                // The tenant is at its limit: try again shortly, other tenants go first.
                let _ = self.queues.retry_later(self.queue, &d.tenant, d.job, 200 + rand::random::<u64>() % 300).await;
                let _ = (JobStore { db: &self.db }).touch_queued(&d.tenant, d.job).await;
                return ack(self, d.entry).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "concurrency slot: Redis failed; the delivery stays pending");
                return;
            }
        }
        self.process(&d, stop).await;
        let _ = self.queues.release_slot(&d.tenant, d.job).await;
        ack(self, d.entry).await;
    }

    async fn process(&self, d: &Delivery, stop: &mut watch::Receiver<bool>) {
        let q = self.media().queue;
        let store = JobStore { db: &self.db };
        let key = match self.db.data_key(&self.keyring, &d.tenant).await {
            Ok(k) => k,
            Err(e) => return tracing::error!(error = %e, job = %d.job, "no data key"),
        };
        let claimed = match store.claim(&key, &d.tenant, d.job, &self.name, q.visibility_ms).await {
            Ok(Some(c)) => c,
            Ok(None) => return tracing::debug!(job = %d.job, "stale delivery (finished, cancelled or held)"),
            Err(e) => return tracing::error!(error = %e, job = %d.job, "claim failed"),
        };
        let span = tracing::info_span!("media_job", tenant = %d.tenant, job = %d.job, kind = claimed.job.kind.as_str(), attempt = claimed.job.attempts);
        self.run_claimed(d, claimed, key, stop).instrument(span).await
    }

    async fn run_claimed(&self, d: &Delivery, claimed: super::store::Claimed, key: crate::crypto::DataKey, stop: &mut watch::Receiver<bool>) {
        let store = JobStore { db: &self.db };
        let started = Instant::now();
        self.announce(JobEvent::new("started", &d.job.to_string(), &d.tenant, JobStatus::Running, now_s())).await;

        let upload = match &claimed.upload_key {
            Some(k) => match self.objects.get(k).await.map(|sealed| key.open(k.as_bytes(), &sealed)) {
                Ok(Ok(bytes)) => Some(bytes),
                other => {
                    tracing::error!(?other, "the uploaded audio cannot be read");
                    let _ = store.finish(&d.tenant, d.job, &self.name, Err("the uploaded audio could not be read")).await;
                    return self.announce(failed(d, "the uploaded audio could not be read")).await;
                }
            },
            None => None,
        };

        let supervisor = Supervisor { worker: &self.name, queue: self.queue, queues: &self.queues, db: &self.db, http: &self.http, media: self.media(), fleet: &self.fleet, region: self.region() };
        let ending = supervisor.run(d, &claimed.request, upload.as_deref(), stop).await;
        match ending {
            Ending::Lost => tracing::info!("the job was cancelled or taken over; its result is dropped"),
            Ending::Returned => {
                let _ = store.requeue(&d.tenant, d.job, &self.name, None, true).await;
                let _ = self.queues.enqueue(self.queue, &d.tenant, d.job).await;
                tracing::info!("shutting down: the job went back to the queue");
            }
            Ending::Done(Ok(p)) => {
                let mut stored = Vec::new();
                for (i, o) in p.outputs.iter().enumerate() {
                    let k = tenant_key(&d.tenant, "media", &format!("{}/{i}.{}", d.job, o.ext));
                    if let Err(e) = self.objects.put(&k, o.bytes.clone(), &o.content_type).await {
                        tracing::error!(error = %e, "storing the output failed");
                        return self.retry_or_fail(d, claimed.job.attempts, claimed.upload_key.as_deref(), Failure { reason: format!("storing the output failed: {e}"), retryable: true }).await;
                    }
                    stored.push(StoredOutput { key: k, content_type: o.content_type.clone(), bytes: o.bytes.len() as u64 });
                }
                match store.finish(&d.tenant, d.job, &self.name, Ok((&stored, &p.deployment, p.cost_usd))).await {
                    Ok(true) => {
                        self.drop_upload(claimed.upload_key.as_deref()).await;
                        let mut e = UsageEvent::for_user(&d.tenant, &claimed.job.user, self.region(), claimed.job.feature.clone());
                        e.answered_by(&p.deployment, p.provider, &p.provider_model);
                        e.cost_usd = p.cost_usd;
                        e.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                        (self.usage)(e);
                        metrics::counter!("meridian_media_jobs_total", "queue" => self.queue, "outcome" => "succeeded").increment(1);
                        self.announce(JobEvent::new("succeeded", &d.job.to_string(), &d.tenant, JobStatus::Succeeded, now_s())).await;
                    }
                    Ok(false) => {
                        // Cancelled while running: its outputs go too. (Taken over: the new
                        // holder writes the same keys, so they stay.)
                        if matches!(store.get(&d.tenant, d.job).await, Ok(Some(j)) if j.status == JobStatus::Cancelled) {
                            for s in &stored {
                                let _ = self.objects.delete(&s.key).await;
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "recording success failed; the delivery will be retried"),
                }
            }
            Ending::Done(Err(f)) => self.retry_or_fail(d, claimed.job.attempts, claimed.upload_key.as_deref(), f).await,
        }
    }

    /// The uploaded input (a transcription's audio) is kept only while the job may still
    /// run.
    async fn drop_upload(&self, upload_key: Option<&str>) {
        if let Some(k) = upload_key {
            if let Err(e) = self.objects.delete(k).await {
                tracing::warn!(error = %e, "deleting the uploaded input failed");
            }
        }
    }

    async fn retry_or_fail(&self, d: &Delivery, attempts: i32, upload_key: Option<&str>, f: Failure) {
        let q = self.media().queue;
        let store = JobStore { db: &self.db };
        if f.retryable && (attempts as u32) < q.max_attempts {
            let backoff = (q.backoff_base_ms << (attempts.max(1) as u32 - 1).min(16)).min(q.backoff_max_ms);
            let delay = backoff / 2 + rand::random::<u64>() % (backoff / 2 + 1);
            if let Ok(true) = store.requeue(&d.tenant, d.job, &self.name, Some(&f.reason), false).await {
                let _ = self.queues.retry_later(self.queue, &d.tenant, d.job, delay).await;
                let mut e = JobEvent::new("queued", &d.job.to_string(), &d.tenant, JobStatus::Queued, now_s());
                e.reason = Some(format!("attempt {attempts} failed, retrying in {delay} ms: {}", f.reason));
                self.announce(e).await;
            }
            return;
        }
        if let Ok(true) = store.finish(&d.tenant, d.job, &self.name, Err(&f.reason)).await {
            self.drop_upload(upload_key).await;
            let _ = self.queues.dead_letter(self.queue, &d.tenant, d.job, &f.reason).await;
            metrics::counter!("meridian_media_jobs_total", "queue" => self.queue, "outcome" => "failed").increment(1);
            self.announce(failed(d, &f.reason)).await;
        }
    }
}

fn failed(d: &Delivery, reason: &str) -> JobEvent {
    let mut e = JobEvent::new("failed", &d.job.to_string(), &d.tenant, JobStatus::Failed, now_s());
    e.reason = Some(reason.to_string());
    e
}
