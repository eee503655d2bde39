//! An in-memory semantic index for one tenant, host-agnostic: what the edge's per-tenant
//! Durable Object will hold (the regions keep the same semantics in pgvector). Entries are
//! the question's embedding (from the tenant's home region), the question, and a
//! reference to the stored answer; the index is bounded (least recently used out first)
//! and entries expire. Lookups follow [`super::semantic::decide`]: same scope, nearest by
//! cosine, served only at or above the threshold and past the guard.

use serde::{Deserialize, Serialize};

use super::semantic::{decide, Miss};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub scope: String,
    pub question: String,
    /// Unit length (as the embedding models return it).
    pub embedding: Vec<f32>,
    /// Where the answer is stored (e.g. the exact-cache key).
    pub answer_ref: String,
    pub stored_at_s: u64,
    pub last_used_s: u64,
}

/// A served entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub answer_ref: String,
    pub similarity: f32,
    pub age_s: u64,
}

/// Not served: the nearest similarity in scope (for the metric) and why, if anything was
/// in scope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Missed {
    pub nearest: Option<f32>,
    pub reason: Option<Miss>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticIndex {
    entries: Vec<Entry>,
    max_entries: usize,
    ttl_s: u64,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl SemanticIndex {
    pub fn new(max_entries: usize, ttl_s: u64) -> Self {
        SemanticIndex { entries: Vec::new(), max_entries: max_entries.max(1), ttl_s }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expired(&self, e: &Entry, now_s: u64) -> bool {
        now_s.saturating_sub(e.stored_at_s) >= self.ttl_s
    }

    /// Adds an entry: expired ones go first, then the least recently used while full.
    pub fn insert(&mut self, scope: &str, question: &str, embedding: Vec<f32>, answer_ref: &str, now_s: u64) {
        let ttl = self.ttl_s;
        self.entries.retain(|e| now_s.saturating_sub(e.stored_at_s) < ttl);
        while self.entries.len() >= self.max_entries {
            let oldest = self.entries.iter().enumerate().min_by_key(|(_, e)| e.last_used_s).map(|(i, _)| i).expect("non-empty when full");
            self.entries.swap_remove(oldest);
        }
        self.entries.push(Entry { scope: scope.into(), question: question.into(), embedding, answer_ref: answer_ref.into(), stored_at_s: now_s, last_used_s: now_s });
    }

    /// The nearest live entry in `scope`, served if it passes `threshold` and the guard.
    pub fn lookup(&mut self, scope: &str, question: &str, embedding: &[f32], threshold: f32, guard: bool, now_s: u64) -> Result<Hit, Missed> {
        let best = self.entries.iter().enumerate().filter(|(_, e)| e.scope == scope && !self.expired(e, now_s)).map(|(i, e)| (i, dot(&e.embedding, embedding))).max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((i, similarity)) = best else { return Err(Missed { nearest: None, reason: None }) };
        decide(similarity, threshold, &self.entries[i].question, question, guard).map_err(|reason| Missed { nearest: Some(similarity), reason: Some(reason) })?;
        let e = &mut self.entries[i];
        e.last_used_s = now_s;
        Ok(Hit { answer_ref: e.answer_ref.clone(), similarity, age_s: now_s.saturating_sub(e.stored_at_s) })
    }

    /// Forgets everything (tenant deletion).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = dot(v, v).sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn serves_the_nearest_in_scope_above_the_threshold_and_past_the_guard() {
        let mut ix = SemanticIndex::new(10, 3600);
        ix.insert("s", "How do I reset my password?", unit(&[1.0, 0.0, 0.0]), "a1", 100);
        ix.insert("s", "What are your opening hours?", unit(&[0.0, 1.0, 0.0]), "a2", 100);
        ix.insert("other", "How do I reset my password?", unit(&[1.0, 0.0, 0.0]), "x", 100);
        let hit = ix.lookup("s", "How can I reset my password?", &unit(&[1.0, 0.1, 0.0]), 0.95, true, 160).unwrap();
        assert_eq!((hit.answer_ref.as_str(), hit.age_s), ("a1", 60));
        assert!(hit.similarity > 0.99);
        let miss = ix.lookup("s", "How do I reset my password?", &unit(&[1.0, 1.0, 0.0]), 0.95, true, 160).unwrap_err();
        assert_eq!(miss.reason, Some(Miss::BelowThreshold));
        assert!((miss.nearest.unwrap() - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3, "the nearest similarity is reported on a miss");
        let guarded = ix.lookup("s", "How do I not reset my password?", &unit(&[1.0, 0.0, 0.0]), 0.95, true, 160).unwrap_err();
        assert_eq!(guarded.reason, Some(Miss::Negation));
        assert_eq!(ix.lookup("none", "q", &unit(&[1.0, 0.0, 0.0]), 0.5, true, 160).unwrap_err(), Missed { nearest: None, reason: None }, "nothing in scope");
    }

    #[test]
    fn bounded_by_least_recent_use_and_entries_expire() {
        let mut ix = SemanticIndex::new(2, 100);
        ix.insert("s", "first", unit(&[1.0, 0.0]), "a", 0);
        ix.insert("s", "second", unit(&[0.0, 1.0]), "b", 1);
        ix.lookup("s", "first", &unit(&[1.0, 0.0]), 0.9, false, 2).unwrap();
        ix.insert("s", "third", unit(&[1.0, 1.0]), "c", 3);
        assert_eq!(ix.len(), 2);
        assert!(ix.lookup("s", "second", &unit(&[0.0, 1.0]), 0.99, false, 4).is_err(), "the least recently used went");
        assert!(ix.lookup("s", "first", &unit(&[1.0, 0.0]), 0.99, false, 4).is_ok(), "the recently served one stayed");
        assert!(ix.lookup("s", "first", &unit(&[1.0, 0.0]), 0.99, false, 100).is_err(), "expired at its TTL");
        ix.insert("s", "fourth", unit(&[0.5, 1.0]), "d", 150);
        assert_eq!(ix.len(), 1, "expired entries are dropped on insert");
        let json = serde_json::to_string(&ix).unwrap();
        assert_eq!(serde_json::from_str::<SemanticIndex>(&json).unwrap(), ix, "round-trips for Durable Object storage");
        ix.clear();
        assert!(ix.is_empty());
    }
}
