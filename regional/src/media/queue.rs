//! The media queues in Redis: one stream per media queue (`image`, `audio`, `video`) per
//! region, read by a consumer group, so each delivery goes to one worker and stays
//! pending until acknowledged; entries a worker took but never acknowledged are taken
//! over by another after the visibility timeout (`XAUTOCLAIM`). Retries wait in a sorted
//! set by due time; jobs that exhausted their attempts are copied to a dead-letter stream.
//! A per-tenant sorted set of running jobs (scored by lease end) bounds each tenant's
//! concurrency, and heals itself when a worker dies.
//!
//! Redis only says "there is work": the job's state lives in PostgreSQL
//! ([`super::store`]), and the reconciler re-enqueues from there if Redis loses data.

use std::time::Duration;

use fred::prelude::*;
use fred::types::streams::XID;
use fred::types::Value;
use uuid::Uuid;

use crate::clock::unix_ms as now_ms;

pub const GROUP: &str = "workers";

#[derive(Clone)]
pub struct Queue {
    redis: Client,
    region: String,
}

/// The outcome of asking for a tenant's running slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Taken,
    /// The job holds one already (lease extended).
    Held,
    /// The tenant runs as many jobs as it may.
    Full,
}

/// A delivery not yet in a stream (scheduled for later, or about to be added).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub tenant: String,
    pub job: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default)]
    pub attempt: u32,
}

/// One delivery of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The stream entry id, to acknowledge.
    pub entry: String,
    pub job: Uuid,
    pub tenant: String,
    /// For event deliveries (webhooks): the event JSON and how many tries it has had.
    pub event: Option<String>,
    pub attempt: u32,
}

/// Opens a client for the queues. A worker needs one of its own: its blocking reads
/// hold the connection, and commands on one connection are served in order.
pub async fn connect(url: &str) -> Result<Client, Error> {
    let client = Builder::from_config(Config::from_url(url)?)
        .with_connection_config(|c| c.connection_timeout = Duration::from_secs(5))
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(10))
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()?;
    client.init().await?;
    Ok(client)
}

fn text(v: &Value) -> Option<String> {
    v.as_string()
}

/// `[[id, [field, value, ...]], ...]` → deliveries (entries without a job are skipped).
fn entries(v: &Value) -> Vec<Delivery> {
    let Value::Array(items) = v else { return Vec::new() };
    items
        .iter()
        .filter_map(|e| {
            let Value::Array(pair) = e else { return None };
            let id = text(pair.first()?)?;
            let Value::Array(fields) = pair.get(1)? else { return None };
            let (mut job, mut tenant, mut event, mut attempt) = (None, None, None, 0);
            for kv in fields.chunks(2) {
                match (kv.first().and_then(text).as_deref(), kv.get(1).and_then(text)) {
                    (Some("job"), Some(v)) => job = Uuid::parse_str(&v).ok(),
                    (Some("tenant"), Some(v)) => tenant = Some(v),
                    (Some("event"), Some(v)) => event = Some(v),
                    (Some("attempt"), Some(v)) => attempt = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            Some(Delivery { entry: id, job: job?, tenant: tenant?, event, attempt })
        })
        .collect()
}

impl Queue {
    pub fn new(redis: Client, region: &str) -> Queue {
        Queue { redis, region: region.to_string() }
    }

    pub fn stream(&self, queue: &str) -> String {
        format!("meridian:{}:media:{queue}", self.region)
    }

    fn delayed(&self, queue: &str) -> String {
        format!("meridian:{}:media:{queue}:delayed", self.region)
    }

    pub fn dead(&self, queue: &str) -> String {
        format!("meridian:{}:media:{queue}:dead", self.region)
    }

    fn running(&self, tenant: &str) -> String {
        format!("meridian:{}:media:running:{tenant}", self.region)
    }

    /// The pub/sub channel of a tenant's job events.
    pub fn events_channel(&self, tenant: &str) -> String {
        format!("meridian:{}:jobs:{tenant}", self.region)
    }

    pub fn events_pattern(&self) -> String {
        format!("meridian:{}:jobs:*", self.region)
    }

    pub fn client(&self) -> &Client {
        &self.redis
    }

    /// Creates the stream and its consumer group if missing (safe to repeat).
    pub async fn ensure_group(&self, queue: &str) -> Result<(), Error> {
        match self.redis.xgroup_create::<Value, _, _, _>(self.stream(queue), GROUP, XID::Manual("0".into()), true).await {
            Ok(_) => Ok(()),
            Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn enqueue(&self, queue: &str, tenant: &str, job: Uuid) -> Result<(), Error> {
        self.add(queue, &Pending { tenant: tenant.to_string(), job, event: None, attempt: 0 }).await
    }

    /// Adds a delivery (a job, or an event of one) to `queue`'s stream.
    pub async fn add(&self, queue: &str, p: &Pending) -> Result<(), Error> {
        let mut fields = vec![("job", p.job.to_string()), ("tenant", p.tenant.clone())];
        if let Some(e) = &p.event {
            fields.push(("event", e.clone()));
            fields.push(("attempt", p.attempt.to_string()));
        }
        self.redis.xadd::<Value, _, _, _, _>(self.stream(queue), false, None::<()>, XID::Auto, fields).await?;
        Ok(())
    }

    /// Up to `count` new deliveries for `consumer`, waiting at most `block_ms`.
    pub async fn read(&self, queue: &str, consumer: &str, count: u64, block_ms: u64) -> Result<Vec<Delivery>, Error> {
        let v: Value = self.redis.xreadgroup(GROUP, consumer, Some(count), Some(block_ms), false, self.stream(queue), XID::NewInGroup).await?;
        // RESP2: [[stream, entries]]; RESP3: {stream: entries}.
        Ok(match &v {
            Value::Array(streams) => streams.iter().flat_map(|s| if let Value::Array(p) = s { p.get(1).map(entries).unwrap_or_default() } else { Vec::new() }).collect(),
            Value::Map(m) => m.clone().inner().values().flat_map(entries).collect(),
            _ => Vec::new(),
        })
    }

    /// Deliveries another consumer took more than `idle_ms` ago and never acknowledged.
    pub async fn reclaim(&self, queue: &str, consumer: &str, idle_ms: u64, count: u64) -> Result<Vec<Delivery>, Error> {
        let v: Value = self.redis.xautoclaim(self.stream(queue), GROUP, consumer, idle_ms, XID::Manual("0-0".into()), Some(count), false).await?;
        Ok(match &v {
            Value::Array(parts) => parts.get(1).map(entries).unwrap_or_default(),
            _ => Vec::new(),
        })
    }

    pub async fn ack(&self, queue: &str, entry: &str) -> Result<(), Error> {
        let stream = self.stream(queue);
        self.redis.xack::<Value, _, _, _>(&stream, GROUP, entry).await?;
        self.redis.xdel::<Value, _, _>(&stream, entry).await?;
        Ok(())
    }

    /// Schedules a delivery of `job` after `delay_ms`.
    pub async fn retry_later(&self, queue: &str, tenant: &str, job: Uuid, delay_ms: u64) -> Result<(), Error> {
        self.add_later(queue, &Pending { tenant: tenant.to_string(), job, event: None, attempt: 0 }, delay_ms).await
    }

    /// Schedules `p` for its stream after `delay_ms`.
    pub async fn add_later(&self, queue: &str, p: &Pending, delay_ms: u64) -> Result<(), Error> {
        let due = (now_ms() + delay_ms) as f64;
        let member = serde_json::to_string(p).expect("pending deliveries serialise");
        self.redis.zadd::<Value, _, _>(self.delayed(queue), None, None, false, false, (due, member)).await?;
        Ok(())
    }

    /// Moves due retries into the stream; returns how many.
    pub async fn promote_due(&self, queue: &str) -> Result<usize, Error> {
        let key = self.delayed(queue);
        let due: Vec<String> = self.redis.zrangebyscore(&key, f64::NEG_INFINITY, now_ms() as f64, false, None).await?;
        let mut moved = 0;
        for member in due {
            // Only the worker whose ZREM removed the member enqueues it.
            let removed: i64 = self.redis.zrem(&key, member.as_str()).await?;
            if removed == 1 {
                if let Ok(p) = serde_json::from_str::<Pending>(&member) {
                    self.add(queue, &p).await?;
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }

    pub async fn dead_letter(&self, queue: &str, tenant: &str, job: Uuid, reason: &str) -> Result<(), Error> {
        self.redis.xadd::<Value, _, _, _, _>(self.dead(queue), false, None::<()>, XID::Auto, vec![("job", job.to_string()), ("tenant", tenant.to_string()), ("reason", reason.to_string())]).await?;
        Ok(())
    }

    /// Takes one of the tenant's `limit` running slots for `job` until `lease_ms` from now,
    /// atomically (a Lua script: expired slots of dead workers go first). A job that holds
    /// a slot already gets [`Slot::Held`] and its lease extended: the heartbeat of its own
    /// worker, or a duplicate delivery that must leave the running job alone.
    pub async fn take_slot(&self, tenant: &str, job: Uuid, limit: u32, lease_ms: u64) -> Result<Slot, Error> {
        const SCRIPT: &str = "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
            if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
              redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3]) return 2
            end
            if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
              redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3]) return 1
            end
            return 0";
        let now = now_ms();
        let args = vec![now.to_string(), (now + lease_ms).to_string(), job.to_string(), limit.to_string()];
        let r: i64 = self.redis.eval(SCRIPT, self.running(tenant), args).await?;
        Ok(match r {
            1 => Slot::Taken,
            2 => Slot::Held,
            _ => Slot::Full,
        })
    }

    /// Resets the idle time of a delivery its consumer is still working on, so it is not
    /// reclaimed by another worker (`XCLAIM … JUSTID`).
    pub async fn touch(&self, queue: &str, consumer: &str, entry: &str) -> Result<(), Error> {
        self.redis.xclaim::<Value, _, _, _, _>(self.stream(queue), GROUP, consumer, 0, entry, None, None, None, false, true).await?;
        Ok(())
    }

    pub async fn release_slot(&self, tenant: &str, job: Uuid) -> Result<(), Error> {
        self.redis.zrem::<Value, _, _>(self.running(tenant), job.to_string()).await?;
        Ok(())
    }

    /// Entries in the stream not yet delivered or acknowledged (for tests and metrics).
    pub async fn backlog(&self, queue: &str) -> Result<u64, Error> {
        self.redis.xlen(self.stream(queue)).await
    }
}
