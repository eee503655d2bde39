//! Signed webhooks: each finished job's event is POSTed to the tenant's `webhook.url`
//! with `x-meridian-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` (the
//! Stripe scheme: the receiver recomputes it with the shared secret and rejects old
//! timestamps), retried with exponential backoff on failure or a non-2xx answer.

use std::time::Duration;

use hmac::{Hmac, Mac};
use meridian_shared::media::JobEvent;
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-meridian-signature";

/// The signature header's value for `body` sent at `t`.
pub fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers `e` in the background: up to `attempts` tries, 0.5 s, 1 s, 2 s … apart.
pub fn deliver(http: reqwest::Client, url: String, secret: Vec<u8>, e: &JobEvent, attempts: u32) {
    let body = serde_json::to_vec(e).expect("events serialise");
    let job = e.job_id.clone();
    tokio::spawn(async move {
        for attempt in 0..attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << (attempt - 1).min(6))).await;
            }
            let t = crate::clock::unix_secs();
            let sent = http.post(&url).timeout(Duration::from_secs(10)).header("content-type", "application/json").header(SIGNATURE_HEADER, sign(&secret, t, &body)).body(body.clone()).send().await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::warn!(job, status = r.status().as_u16(), attempt, "webhook refused"),
                Err(err) => tracing::warn!(job, error = %err, attempt, "webhook failed"),
            }
        }
        tracing::error!(job, "webhook gave up");
    });
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
