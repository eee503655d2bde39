//! The audit record of an admin mutation and its hash chain: each record's hash covers
//! the previous record's hash and every field of its own, so a changed, removed or
//! inserted record breaks the chain from there on.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first record of a tenant's chain follows this "hash".
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub tenant: String,
    /// 1, 2, 3 … within the tenant's chain.
    pub seq: i64,
    /// RFC 3339 with microseconds, as stored.
    pub at: String,
    /// Who: `key:NAME`, `jwt:SUBJECT`, `platform:NAME`.
    pub actor: String,
    /// `key.create`, `key.update`, `key.rotate`, `key.revoke`, …
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    /// SHA-256 of the object's JSON before and after (never the object itself: a key's
    /// digest, say, must not leave the keys table).
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// SHA-256 (hex) of a JSON value, for the before/after digests.
pub fn digest_of(v: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

impl AuditRecord {
    /// The hash this record must carry, given its `prev_hash` and fields. Fields are
    /// length-prefixed, so no two different records hash alike by shifting text.
    pub fn chain_hash(&self) -> String {
        let mut h = Sha256::new();
        let fields = [
            self.prev_hash.as_str(),
            self.tenant.as_str(),
            &self.seq.to_string(),
            self.at.as_str(),
            self.actor.as_str(),
            self.action.as_str(),
            self.object_type.as_str(),
            self.object_id.as_str(),
            self.before_digest.as_deref().unwrap_or(""),
            self.after_digest.as_deref().unwrap_or(""),
            self.request_id.as_deref().unwrap_or(""),
        ];
        for f in fields {
            h.update((f.len() as u64).to_be_bytes());
            h.update(f.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Where a chain is broken: the first record whose `prev_hash` or `hash` does not check
/// out, or a gap in the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: &'static str,
}

/// Verifies a tenant's records in `seq` order against its chain head (the last sequence
/// number and hash, kept beside the log), so records removed from the end are found too.
pub fn verify(records: &[AuditRecord], head: Option<(i64, &str)>) -> Result<usize, Broken> {
    let n = verify_chain(records)?;
    let last = records.last().map(|r| (r.seq, r.hash.as_str()));
    match (head, last) {
        (None, None) => Ok(0),
        (Some(h), Some(l)) if h == l => Ok(n),
        (Some((seq, _)), _) => Err(Broken { seq, reason: "the chain ends before its recorded head: records were removed" }),
        (None, Some((seq, _))) => Err(Broken { seq, reason: "the chain has no recorded head" }),
    }
}

fn verify_chain(records: &[AuditRecord]) -> Result<usize, Broken> {
    let mut prev = GENESIS.to_string();
    for (i, r) in records.iter().enumerate() {
        if r.seq != i as i64 + 1 {
            return Err(Broken { seq: i as i64 + 1, reason: "a record is missing" });
        }
        if r.prev_hash != prev {
            return Err(Broken { seq: r.seq, reason: "it does not follow the record before it" });
        }
        if r.chain_hash() != r.hash {
            return Err(Broken { seq: r.seq, reason: "its contents were changed" });
        }
        prev = r.hash.clone();
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    tenant: "t".into(),
                    seq,
                    at: format!("2026-12-01T00:00:0{seq}.000000Z"),
                    actor: "key:admin".into(),
                    action: "key.create".into(),
                    object_type: "api_key".into(),
                    object_id: format!("k{seq}"),
                    before_digest: None,
                    after_digest: Some(digest_of(&serde_json::json!({"n": seq}))),
                    request_id: None,
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = r.chain_hash();
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    #[test]
    fn a_chain_verifies_and_every_tampering_is_found() {
        let head = |c: &[AuditRecord]| c.last().map(|r| (r.seq, r.hash.clone()));
        let full = chain(5);
        let h = head(&full).unwrap();
        let verify = |c: &[AuditRecord]| verify(c, Some((h.0, h.1.as_str())));
        assert_eq!(verify(&full), Ok(5));
        let mut changed = chain(5);
        changed[2].actor = "key:someone-else".into();
        assert_eq!(verify(&changed), Err(Broken { seq: 3, reason: "its contents were changed" }));
        let mut rehashed = chain(5);
        rehashed[2].actor = "key:someone-else".into();
        rehashed[2].hash = rehashed[2].chain_hash();
        assert_eq!(verify(&rehashed), Err(Broken { seq: 4, reason: "it does not follow the record before it" }), "re-hashing one record breaks the next");
        let mut removed = chain(5);
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err().seq, 2);
        let mut last_removed = chain(5);
        last_removed.pop();
        assert_eq!(verify(&last_removed).unwrap_err().seq, 5, "a removed last record is found against the head");
        assert_eq!(super::verify(&[], None), Ok(0));
    }
}
