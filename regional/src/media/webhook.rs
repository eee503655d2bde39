//! Signed webhooks: each finished job's event is POSTed to the tenant's `webhook.url`
//! with `x-meridian-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` (the
//! Stripe scheme: the receiver recomputes it with the shared secret and rejects old
//! timestamps). Calls wait in a Redis stream and are retried with exponential backoff on
//! failure or a non-2xx answer, by whichever worker process is alive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use meridian_shared::config::Config;
use meridian_shared::media::{JobEvent, JobStatus};
use sha2::Sha256;
use tokio::sync::watch;
use uuid::Uuid;

use super::queue::{Delivery, Pending, Queue};
use super::store::JobStore;
use crate::clock::unix_secs;
use crate::db::Db;

pub const SIGNATURE_HEADER: &str = "x-meridian-signature";

/// The signature header's value for `body` sent at `t`.
pub fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The stream webhook deliveries wait in (`meridian:{region}:media:webhooks`).
pub const QUEUE: &str = "webhooks";

/// Queues `e` for the tenant's webhook. Durable: a Redis stream read by every worker
/// process's [`Dispatcher`], so a worker that dies after finishing a job loses no call.
pub async fn enqueue(queues: &Queue, e: &JobEvent) {
    let Ok(job) = Uuid::parse_str(&e.job_id) else { return };
    let p = Pending { tenant: e.tenant.clone(), job, event: Some(serde_json::to_string(e).expect("events serialise")), attempt: 0 };
    if let Err(err) = queues.add(QUEUE, &p).await {
        tracing::error!(error = %err, job = %e.job_id, "queueing a webhook failed");
    }
}

/// Reads the webhook stream and POSTs each event, signed; a failed call (or a non-2xx
/// answer) is retried 0.5 s, 1 s, 2 s … later, up to the tenant's `attempts`, then
/// dead-lettered.
pub struct Dispatcher {
    pub name: String,
    /// A connection of its own (blocking reads).
    pub queues: Queue,
    pub http: reqwest::Client,
    pub config: Arc<Config>,
    pub db: Db,
}

/// How long a webhook may take to be confirmed (all its retries) before the outbox
/// reconciler queues it again.
fn confirm_within_ms(attempts: u32, visibility_ms: u64) -> u64 {
    let backoff: u64 = (1..attempts.max(1)).map(|a| 500u64 << (a - 1).min(6)).sum();
    2 * visibility_ms + backoff + 10_000
}

impl Dispatcher {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if let Err(e) = self.queues.ensure_group(QUEUE).await {
            tracing::error!(error = %e, "cannot create the webhook consumer group");
        }
        let visibility = self.config.media.as_ref().map_or(60_000, |m| m.queue.visibility_ms);
        let (mut last_reclaim, mut last_outbox) = (Instant::now(), Instant::now());
        while !*stop.borrow() {
            let _ = self.queues.promote_due(QUEUE).await;
            let mut batch = Vec::new();
            if last_reclaim.elapsed() >= Duration::from_millis(visibility / 2) {
                last_reclaim = Instant::now();
                batch.extend(self.queues.reclaim(QUEUE, &self.name, visibility, 20).await.unwrap_or_default());
            }
            if last_outbox.elapsed() >= Duration::from_millis(visibility) {
                last_outbox = Instant::now();
                self.requeue_unconfirmed(visibility).await;
            }
            if batch.is_empty() {
                match self.queues.read(QUEUE, &self.name, 10, 500).await {
                    Ok(d) => batch.extend(d),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading webhooks failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = stop.changed() => {}
                        }
                    }
                }
            }
            for d in batch {
                self.deliver(d).await;
            }
        }
    }

    /// The outbox: finished jobs of this region's tenants with webhooks whose call was
    /// never confirmed (a worker died before queueing it) are queued again.
    async fn requeue_unconfirmed(&self, visibility: u64) {
        let store = JobStore { db: &self.db };
        for t in self.config.tenants.iter().filter(|t| t.region == self.config.server.region) {
            let Some(hook) = &t.webhook else { continue };
            match store.unnotified(&t.id, confirm_within_ms(hook.attempts, visibility)).await {
                Ok(jobs) => {
                    for (id, status, error, finished) in jobs {
                        let kind = match status {
                            JobStatus::Succeeded => "succeeded",
                            JobStatus::Cancelled => "cancelled",
                            _ => "failed",
                        };
                        let mut e = JobEvent::new(kind, &id.to_string(), &t.id, status, finished.max(0) as u64);
                        e.reason = error;
                        tracing::info!(job = %id, tenant = %t.id, "webhook never confirmed: queued again");
                        enqueue(&self.queues, &e).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, tenant = %t.id, "webhook outbox query failed"),
            }
        }
    }

    async fn deliver(&self, d: Delivery) {
        let hook = self.config.tenant(&d.tenant).filter(|t| t.region == self.config.server.region).and_then(|t| t.webhook.clone());
        let (Some(hook), Some(event)) = (hook, d.event.clone()) else {
            let _ = self.queues.ack(QUEUE, &d.entry).await;
            return;
        };
        let Ok(secret) = std::env::var(&hook.secret_env) else {
            tracing::error!(tenant = %d.tenant, "webhook secret {} is not set", hook.secret_env);
            let _ = self.queues.ack(QUEUE, &d.entry).await;
            return;
        };
        let body = event.into_bytes();
        let sent = self
            .http
            .post(&hook.url)
            .timeout(Duration::from_secs(10))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, sign(secret.as_bytes(), unix_secs(), &body))
            .body(body.clone())
            .send()
            .await;
        let failure = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("answered {}", r.status().as_u16())),
            Err(e) => Some(e.to_string()),
        };
        let store = JobStore { db: &self.db };
        match failure {
            None => {
                let _ = store.mark_notified(&d.tenant, d.job).await;
            }
            Some(why) => {
                let attempt = d.attempt + 1;
                tracing::warn!(job = %d.job, attempt, why, "webhook call failed");
                let p = Pending { tenant: d.tenant.clone(), job: d.job, event: Some(String::from_utf8_lossy(&body).into_owned()), attempt };
                if attempt < hook.attempts.max(1) {
                    let _ = self.queues.add_later(QUEUE, &p, 500 << (attempt - 1).min(6)).await;
                } else {
                    tracing::error!(job = %d.job, "webhook gave up after {attempt} calls");
                    let _ = self.queues.dead_letter(QUEUE, &d.tenant, d.job, &why).await;
                    let _ = store.mark_notified(&d.tenant, d.job).await;
                }
            }
        }
        let _ = self.queues.ack(QUEUE, &d.entry).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = super::sign(b"secret", 1_700_000_000, b"{\"type\":\"job.succeeded\"}");
        assert!(a.starts_with("t=1700000000,v1=") && a.len() == "t=1700000000,v1=".len() + 64);
        assert_ne!(a, super::sign(b"secret", 1_700_000_001, b"{\"type\":\"job.succeeded\"}"));
        assert_ne!(a, super::sign(b"other", 1_700_000_000, b"{\"type\":\"job.succeeded\"}"));
    }
}
