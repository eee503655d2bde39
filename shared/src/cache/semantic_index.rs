//! The in-memory part of a tenant's semantic cache at the edge, host-agnostic: what the
//! per-tenant Durable Object holds so a lookup never reads its whole store. The regions
//! keep the same semantics in pgvector.
//!
//! A Durable Object has 128 MB, and 100,000 questions at 384 × f32 alone would take
//! 154 MB; so each embedding is kept here as 8-bit codes with one scale (384 bytes), which
//! ranks candidates only. The host then re-scores the [`shortlist`](SemanticIndex::shortlist)
//! exactly from its store (full-precision vector, question, scope) and lets [`pick`]
//! apply the threshold and the guard of [`super::semantic::decide`] — so the similarity
//! served and reported is the exact cosine, never the quantised one.
//!
//! The index is bounded (least recently used out first) and entries expire; the caller
//! deletes the ids it is told were evicted.

use serde::{Deserialize, Serialize};

use super::semantic::{decide, Miss};

/// Per-entry bookkeeping; codes live in one contiguous buffer beside it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// The host's id for the entry (its storage row).
    pub id: u64,
    /// [`scope_hash`] of the entry's scope; the host compares the scope itself on re-scoring.
    pub scope: u64,
    pub scale: f32,
    pub stored_at_s: u64,
    pub last_used_s: u64,
}

/// A candidate for exact re-scoring, by quantised similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: u64,
    pub approx: f32,
}

/// A candidate as the host re-read it from its store.
pub struct Stored<'a> {
    pub id: u64,
    pub scope: &'a str,
    pub question: &'a str,
    pub embedding: &'a [f32],
}

/// A served entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Picked {
    pub id: u64,
    pub similarity: f32,
}

/// Not served: the nearest exact similarity in scope (for the metric) and why, if
/// anything was in scope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Missed {
    pub nearest: Option<f32>,
    pub reason: Option<Miss>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SemanticIndex {
    dims: usize,
    codes: Vec<i8>,
    slots: Vec<Slot>,
    max_entries: usize,
    ttl_s: u64,
}

/// A stable 64-bit FNV-1a hash of a scope key (the host re-checks the key itself).
pub fn scope_hash(scope: &str) -> u64 {
    scope.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// 8-bit codes and the scale that maps them back (`x ≈ code × scale`).
pub fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    (v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

/// The integer dot product of two code vectors: the hot loop of a lookup (100k entries ×
/// 384 dimensions). In a Worker (wasm32 with SIMD) 16 codes at a time, widened to i16
/// and multiplied pairwise into i32 lanes (`i32x4.dot_i16x8_s`); elsewhere plain Rust.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn dot_codes(a: &[i8], b: &[i8]) -> i32 {
    use core::arch::wasm32::*;
    let n = a.len().min(b.len());
    let whole = n / 16 * 16;
    let mut acc = i32x4_splat(0);
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 <= whole <= len of both slices; wasm loads need no alignment.
        let (va, vb) = unsafe { (v128_load(a.as_ptr().add(i) as *const v128), v128_load(b.as_ptr().add(i) as *const v128)) };
        let lo = i32x4_dot_i16x8(i16x8_extend_low_i8x16(va), i16x8_extend_low_i8x16(vb));
        let hi = i32x4_dot_i16x8(i16x8_extend_high_i8x16(va), i16x8_extend_high_i8x16(vb));
        acc = i32x4_add(acc, i32x4_add(lo, hi));
    }
    let lanes = i32x4_extract_lane::<0>(acc) + i32x4_extract_lane::<1>(acc) + i32x4_extract_lane::<2>(acc) + i32x4_extract_lane::<3>(acc);
    lanes + a[whole..n].iter().zip(&b[whole..n]).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum::<i32>()
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn dot_codes(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl SemanticIndex {
    pub fn new(dims: usize, max_entries: usize, ttl_s: u64) -> Self {
        SemanticIndex { dims, codes: Vec::new(), slots: Vec::new(), max_entries: max_entries.max(1), ttl_s }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes held (codes and slots), for the host's stats.
    pub fn bytes(&self) -> usize {
        self.codes.len() + self.slots.len() * std::mem::size_of::<Slot>()
    }

    /// Applies the current limits (they come from configuration, which may change).
    pub fn set_limits(&mut self, max_entries: usize, ttl_s: u64) {
        self.max_entries = max_entries.max(1);
        self.ttl_s = ttl_s;
    }

    fn live(&self, s: &Slot, now_s: u64) -> bool {
        now_s.saturating_sub(s.stored_at_s) < self.ttl_s
    }

    fn remove_at(&mut self, i: usize) -> u64 {
        let last = self.slots.len() - 1;
        if i != last {
            let (head, tail) = self.codes.split_at_mut(last * self.dims);
            head[i * self.dims..(i + 1) * self.dims].copy_from_slice(&tail[..self.dims]);
        }
        self.codes.truncate(last * self.dims);
        self.slots.swap_remove(i).id
    }

    /// Drops expired entries; returns their ids.
    pub fn expire(&mut self, now_s: u64) -> Vec<u64> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.slots.len() {
            if self.live(&self.slots[i], now_s) {
                i += 1;
            } else {
                gone.push(self.remove_at(i));
            }
        }
        gone
    }

    /// Restores an entry read back from the host's store (no eviction).
    pub fn restore(&mut self, slot: Slot, codes: &[i8]) {
        if codes.len() == self.dims {
            self.codes.extend_from_slice(codes);
            self.slots.push(slot);
        }
    }

    /// Adds an entry; returns the ids that had to go (expired ones first, then the least
    /// recently used while full) for the host to delete.
    pub fn insert(&mut self, id: u64, scope: &str, embedding: &[f32], now_s: u64) -> Vec<u64> {
        let mut gone = self.expire(now_s);
        while self.slots.len() >= self.max_entries {
            let oldest = self.slots.iter().enumerate().min_by_key(|(_, s)| s.last_used_s).map(|(i, _)| i).expect("non-empty when full");
            gone.push(self.remove_at(oldest));
        }
        let (codes, scale) = quantize(embedding);
        self.restore(Slot { id, scope: scope_hash(scope), scale, stored_at_s: now_s, last_used_s: now_s }, &codes);
        gone
    }

    /// Marks an entry used (a hit), for the LRU order.
    pub fn touch(&mut self, id: u64, now_s: u64) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.id == id) {
            s.last_used_s = now_s;
        }
    }

    /// Forgets one entry (its stored row was found missing or changed).
    pub fn remove(&mut self, id: u64) {
        if let Some(i) = self.slots.iter().position(|s| s.id == id) {
            self.remove_at(i);
        }
    }

    /// Forgets everything (tenant deletion).
    pub fn clear(&mut self) {
        self.codes.clear();
        self.slots.clear();
    }

    /// The `k` live entries in `scope` nearest to `embedding` by quantised cosine, best first.
    pub fn shortlist(&self, scope: &str, embedding: &[f32], k: usize, now_s: u64) -> Vec<Candidate> {
        if embedding.len() != self.dims || k == 0 {
            return Vec::new();
        }
        let h = scope_hash(scope);
        let (q, q_scale) = quantize(embedding);
        let mut best: Vec<Candidate> = Vec::with_capacity(k + 1);
        for (i, s) in self.slots.iter().enumerate() {
            if s.scope != h || !self.live(s, now_s) {
                continue;
            }
            let approx = dot_codes(&q, &self.codes[i * self.dims..(i + 1) * self.dims]) as f32 * q_scale * s.scale;
            if best.len() == k && best[k - 1].approx >= approx {
                continue;
            }
            let at = best.partition_point(|c| c.approx >= approx);
            best.insert(at, Candidate { id: s.id, approx });
            best.truncate(k);
        }
        best
    }
}

/// Among the re-read candidates of `scope`, the nearest by exact cosine, served if it
/// passes `threshold` and the guard.
pub fn pick(scope: &str, question: &str, embedding: &[f32], candidates: &[Stored<'_>], threshold: f32, guard: bool) -> Result<Picked, Missed> {
    let best = candidates.iter().filter(|c| c.scope == scope && c.embedding.len() == embedding.len()).map(|c| (c, dot(c.embedding, embedding))).max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((c, similarity)) = best else { return Err(Missed { nearest: None, reason: None }) };
    decide(similarity, threshold, c.question, question, guard).map_err(|reason| Missed { nearest: Some(similarity), reason: Some(reason) })?;
    Ok(Picked { id: c.id, similarity })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = dot(v, v).sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// A deterministic pseudo-random unit vector.
    fn random_unit(seed: u64, dims: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let v: Vec<f32> = (0..dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        unit(&v)
    }

    #[test]
    fn the_shortlist_finds_the_exact_nearest_among_many_and_pick_serves_it_by_exact_cosine() {
        let dims = 384;
        let mut ix = SemanticIndex::new(dims, 10_000, 3600);
        let vectors: Vec<Vec<f32>> = (0..2_000).map(|i| random_unit(i, dims)).collect();
        for (i, v) in vectors.iter().enumerate() {
            ix.insert(i as u64, "s", v, 10);
        }
        // A query near entry 777 (cosine ≈ 0.97) and its exact nearest by brute force.
        let noise = random_unit(99_999, dims);
        let q = unit(&vectors[777].iter().zip(&noise).map(|(a, b)| a + 0.25 * b).collect::<Vec<_>>());
        let exact = (0..vectors.len()).max_by(|&a, &b| dot(&vectors[a], &q).total_cmp(&dot(&vectors[b], &q))).unwrap();
        assert_eq!(exact, 777);
        let short = ix.shortlist("s", &q, 4, 20);
        assert_eq!(short[0].id, 777, "quantised ranking keeps the nearest first");
        assert!((short[0].approx - dot(&vectors[777], &q)).abs() < 0.01, "quantised cosine within 0.01: {} vs {}", short[0].approx, dot(&vectors[777], &q));
        assert!(short.windows(2).all(|w| w[0].approx >= w[1].approx));
        let stored: Vec<Stored> = short.iter().map(|c| Stored { id: c.id, scope: "s", question: "How do I reset my password?", embedding: &vectors[c.id as usize] }).collect();
        let hit = pick("s", "How can I reset my password?", &q, &stored, 0.95, true).unwrap();
        assert_eq!(hit, Picked { id: 777, similarity: dot(&vectors[777], &q) }, "the exact cosine is served");
        let miss = pick("s", "How can I reset my password?", &q, &stored, 0.99, true).unwrap_err();
        assert_eq!(miss, Missed { nearest: Some(dot(&vectors[777], &q)), reason: Some(Miss::BelowThreshold) });
        let negated = pick("s", "How can I not reset my password?", &q, &stored, 0.95, true).unwrap_err();
        assert_eq!(negated.reason, Some(Miss::Negation));
        assert_eq!(pick("other", "q", &q, &stored, 0.5, true).unwrap_err(), Missed { nearest: None, reason: None }, "a candidate of another scope is never served");
        assert!(ix.shortlist("other", &q, 4, 20).is_empty(), "scopes are apart");
        assert!(ix.shortlist("s", &q[..10], 4, 20).is_empty(), "a vector of other dimensions matches nothing");
        assert!(ix.bytes() < 2_000 * (dims + 48), "about one byte per dimension: {}", ix.bytes());
    }

    #[test]
    fn bounded_by_least_recent_use_and_entries_expire() {
        let mut ix = SemanticIndex::new(2, 2, 100);
        assert!(ix.insert(1, "s", &unit(&[1.0, 0.0]), 0).is_empty());
        assert!(ix.insert(2, "s", &unit(&[0.0, 1.0]), 1).is_empty());
        ix.touch(1, 2);
        assert_eq!(ix.insert(3, "s", &unit(&[1.0, 1.0]), 3), vec![2], "the least recently used goes");
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.shortlist("s", &unit(&[1.0, 0.0]), 5, 4).iter().map(|c| c.id).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(ix.shortlist("s", &unit(&[1.0, 0.0]), 5, 100).iter().map(|c| c.id).collect::<Vec<_>>(), vec![3], "1 expired at its TTL");
        assert_eq!(ix.insert(4, "s", &unit(&[0.5, 1.0]), 150), vec![1, 3], "expired entries are dropped on insert");
        ix.remove(4);
        assert!(ix.is_empty());
        ix.restore(Slot { id: 9, scope: scope_hash("s"), scale: 1.0 / 127.0, stored_at_s: 150, last_used_s: 150 }, &[127, 0]);
        assert_eq!(ix.shortlist("s", &[1.0, 0.0], 1, 151)[0].id, 9, "restored entries are searched");
        ix.restore(Slot { id: 10, scope: 0, scale: 1.0, stored_at_s: 0, last_used_s: 0 }, &[1, 2, 3]);
        assert_eq!(ix.len(), 1, "codes of other dimensions are refused");
        ix.clear();
        assert!(ix.is_empty());
    }
}
