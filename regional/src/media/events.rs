//! Job events: published on the tenant's Redis channel by whichever process changed the
//! job (API or worker), and fanned out in each API process by one pattern subscription to
//! the SSE and WebSocket subscribers and synchronous requests of that tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fred::prelude::*;
use meridian_shared::media::JobEvent;
use tokio::sync::broadcast;

use super::queue::Queue;

/// Events buffered per tenant for slow subscribers before they lag.
const BUFFER: usize = 256;

pub async fn publish(q: &Queue, e: &JobEvent) {
    let payload = serde_json::to_string(e).expect("events serialise");
    if let Err(err) = q.client().publish::<i64, _, _>(q.events_channel(&e.tenant), payload).await {
        tracing::warn!(error = %err, job = %e.job_id, "publishing a job event failed");
    }
}

/// This process's subscribers, by tenant.
#[derive(Clone, Default)]
pub struct Hub {
    tenants: Arc<Mutex<HashMap<String, broadcast::Sender<JobEvent>>>>,
}

impl Hub {
    /// A receiver of `tenant`'s events from now on.
    pub fn subscribe(&self, tenant: &str) -> broadcast::Receiver<JobEvent> {
        self.tenants.lock().expect("hub lock").entry(tenant.to_string()).or_insert_with(|| broadcast::channel(BUFFER).0).subscribe()
    }

    fn deliver(&self, e: JobEvent) {
        let mut map = self.tenants.lock().expect("hub lock");
        if let Some(tx) = map.get(&e.tenant) {
            if tx.send(e.clone()).is_err() {
                map.remove(&e.tenant);
            }
        }
    }

    /// Subscribes a connection of its own to every tenant's channel of the region (again
    /// after every reconnect) and feeds the hub until the process ends.
    pub async fn run(self, url: &str, pattern: String) -> Result<(), Error> {
        let client = Builder::from_config(Config::from_url(url)?).set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2)).build_subscriber_client()?;
        client.init().await?;
        let resubscribe = client.manage_subscriptions();
        let mut rx = client.message_rx();
        client.psubscribe(pattern).await?;
        tokio::spawn(async move {
            // The client lives as long as this task.
            let _keep = (client, resubscribe);
            while let Ok(msg) = rx.recv().await {
                if let Some(e) = msg.value.as_string().and_then(|s| serde_json::from_str::<JobEvent>(&s).ok()) {
                    self.deliver(e);
                }
            }
        });
        Ok(())
    }
}
