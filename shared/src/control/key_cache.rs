//! [`KeyCache`]: what a host remembers of keys it resolved through their home region —
//! found or not found — for a bounded time. The time is the bound on how late a
//! revocation or a change of roles takes effect there, and misses are cached as well so
//! a flood of random keys costs the region at most one lookup per key per period.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::auth::ApiKeyDigest;

/// A key as its home region resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedKey {
    pub tenant: String,
    pub key_name: String,
    pub roles: Option<Vec<String>>,
}

pub struct KeyCache {
    entries: HashMap<ApiKeyDigest, (Option<ResolvedKey>, u64)>,
    ttl_ms: u64,
    max_entries: usize,
}

impl KeyCache {
    pub fn new(ttl_ms: u64, max_entries: usize) -> Self {
        KeyCache { entries: HashMap::new(), ttl_ms, max_entries: max_entries.max(1) }
    }

    /// `Some(found)` while an answer is fresh (`Some(None)`: known not to exist).
    pub fn get(&self, digest: &ApiKeyDigest, now_ms: u64) -> Option<Option<ResolvedKey>> {
        self.entries.get(digest).filter(|(_, until)| now_ms < *until).map(|(v, _)| v.clone())
    }

    pub fn put(&mut self, digest: ApiKeyDigest, found: Option<ResolvedKey>, now_ms: u64) {
        if self.entries.len() >= self.max_entries {
            self.entries.retain(|_, (_, until)| now_ms < *until);
            if self.entries.len() >= self.max_entries {
                self.entries.clear();
            }
        }
        self.entries.insert(digest, (found, now_ms + self.ttl_ms));
    }

    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_api_key;

    #[test]
    fn answers_expire_and_the_cache_stays_bounded() {
        let mut c = KeyCache::new(2_000, 3);
        let k = ResolvedKey { tenant: "t".into(), key_name: "k".into(), roles: None };
        c.put(hash_api_key("a"), Some(k.clone()), 0);
        c.put(hash_api_key("b"), None, 0);
        assert_eq!(c.get(&hash_api_key("a"), 1_999), Some(Some(k)));
        assert_eq!(c.get(&hash_api_key("b"), 1_000), Some(None), "a miss is remembered too");
        assert_eq!(c.get(&hash_api_key("a"), 2_000), None, "expired: ask again");
        assert_eq!(c.get(&hash_api_key("zz"), 0), None);
        for i in 0..10 {
            c.put(hash_api_key(&i.to_string()), None, 5_000);
        }
        assert!(c.len() <= 3);
    }
}
