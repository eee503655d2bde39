//! `SemanticCache`: one tenant's semantic response cache at the edge. Its SQLite store
//! keeps each entry whole (scope, question, full-precision embedding, the answer); its
//! memory keeps only the quantised [`SemanticIndex`] that ranks candidates, rebuilt from
//! the store when the object starts. A lookup shortlists by the index, re-reads the
//! shortlisted rows and decides on their exact cosine (`semantic_index::pick`).
//!
//! Limits (entries, TTL) come with each call from the Worker's configuration. Expired and
//! least-recently-used entries are deleted from the store as new ones arrive, and an
//! alarm deletes expired ones when nothing arrives (the TTL is kept in the store for it). The
//! embedding model is part of every scope; if the dimensions change (the tenant moved to
//! another model) the old entries are useless and are all dropped.

use std::cell::RefCell;

use meridian_shared::cache::semantic::Lookup;
use meridian_shared::cache::semantic_index::{pick, quantize, scope_hash, SemanticIndex, Slot, Stored};
use meridian_shared::cache::CachedAnswer;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

use crate::semantic::wire::{Found, Limits, LookupRequest, StoreRequest};

/// Candidates re-scored exactly per lookup.
const SHORTLIST: usize = 8;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS semantic_entries (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    question TEXT NOT NULL,
    embedding BLOB NOT NULL,
    codes BLOB NOT NULL,
    scale REAL NOT NULL,
    answer TEXT NOT NULL,
    stored_at INTEGER NOT NULL,
    last_used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS semantic_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)";

#[durable_object]
pub struct SemanticCache {
    state: State,
    index: RefCell<Option<SemanticIndex>>,
}

fn bad(e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn int(v: &SqlStorageValue) -> u64 {
    match v {
        SqlStorageValue::Integer(i) => *i as u64,
        SqlStorageValue::Float(f) => *f as u64,
        _ => 0,
    }
}

fn text(v: &SqlStorageValue) -> &str {
    match v {
        SqlStorageValue::String(s) => s,
        _ => "",
    }
}

fn blob(v: &SqlStorageValue) -> &[u8] {
    match v {
        SqlStorageValue::Blob(b) => b,
        _ => &[],
    }
}

impl SemanticCache {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    /// The index, rebuilt from the store on first use.
    fn ensure_loaded(&self, dims: usize, limits: Limits) -> Result<()> {
        if self.index.borrow().as_ref().is_some_and(|ix| ix.dims() == dims) {
            self.index.borrow_mut().as_mut().expect("loaded").set_limits(limits.max_entries, limits.ttl_s);
            return Ok(());
        }
        let sql = self.sql();
        sql.exec(SCHEMA, None)?;
        let mut ix = SemanticIndex::new(dims, limits.max_entries, limits.ttl_s);
        let mut other_dims = false;
        for row in sql.exec("SELECT id, scope, codes, scale, stored_at, last_used FROM semantic_entries", None)?.raw() {
            let row = row?;
            let codes: Vec<i8> = blob(&row[2]).iter().map(|&b| b as i8).collect();
            if codes.len() != dims {
                other_dims = true;
                continue;
            }
            let scale = match row[3] {
                SqlStorageValue::Float(f) => f as f32,
                SqlStorageValue::Integer(i) => i as f32,
                _ => 0.0,
            };
            ix.restore(Slot { id: int(&row[0]), scope: scope_hash(text(&row[1])), scale, stored_at_s: int(&row[4]), last_used_s: int(&row[5]) }, &codes);
        }
        if other_dims {
            // Another embedding model's entries: never comparable again.
            sql.exec("DELETE FROM semantic_entries WHERE length(codes) != ?", vec![SqlStorageValue::Integer(dims as i64)])?;
        }
        *self.index.borrow_mut() = Some(ix);
        Ok(())
    }

    fn lookup(&self, r: LookupRequest) -> Result<Found> {
        self.ensure_loaded(r.embedding.len(), r.limits)?;
        let now = crate::clock::now_ms() / 1000;
        let shortlist = self.index.borrow().as_ref().expect("loaded").shortlist(&r.scope, &r.embedding, SHORTLIST, now);
        if shortlist.is_empty() {
            return Ok(Found::Miss(Lookup::miss(None, None)));
        }
        let ids = shortlist.iter().map(|c| c.id.to_string()).collect::<Vec<_>>().join(",");
        let rows: Vec<Vec<SqlStorageValue>> = self.sql().exec(&format!("SELECT id, scope, question, embedding FROM semantic_entries WHERE id IN ({ids})"), None)?.raw().collect::<Result<_>>()?;
        let vectors: Vec<Vec<f32>> = rows.iter().map(|r| f32s(blob(&r[3]))).collect();
        let stored: Vec<Stored> = rows.iter().zip(&vectors).map(|(r, v)| Stored { id: int(&r[0]), scope: text(&r[1]), question: text(&r[2]), embedding: v }).collect();
        match pick(&r.scope, &r.question, &r.embedding, &stored, r.threshold, r.guard) {
            Ok(p) => {
                let sql = self.sql();
                let row = sql.exec("SELECT answer, stored_at FROM semantic_entries WHERE id = ?", vec![SqlStorageValue::Integer(p.id as i64)])?.raw().next().transpose()?;
                let Some(row) = row else {
                    self.index.borrow_mut().as_mut().expect("loaded").remove(p.id);
                    return Ok(Found::Miss(Lookup::miss(None, None)));
                };
                let answer: CachedAnswer = serde_json::from_str(text(&row[0])).map_err(bad)?;
                sql.exec("UPDATE semantic_entries SET last_used = ? WHERE id = ?", vec![SqlStorageValue::Integer(now as i64), SqlStorageValue::Integer(p.id as i64)])?;
                self.index.borrow_mut().as_mut().expect("loaded").touch(p.id, now);
                Ok(Found::Hit { answer, similarity: p.similarity, age_s: now.saturating_sub(int(&row[1])) })
            }
            Err(m) => Ok(Found::Miss(Lookup::miss(m.nearest, m.reason))),
        }
    }

    fn store(&self, entries: Vec<StoreRequest>, limits: Limits) -> Result<usize> {
        let Some(dims) = entries.first().map(|e| e.embedding.len()) else { return Ok(0) };
        self.ensure_loaded(dims, limits)?;
        let sql = self.sql();
        let now = crate::clock::now_ms() / 1000;
        let mut evicted = Vec::new();
        for e in entries.into_iter().filter(|e| e.embedding.len() == dims) {
            let (codes, scale) = quantize(&e.embedding);
            let answer = serde_json::to_string(&e.answer)?;
            let values = vec![
                SqlStorageValue::String(e.scope.clone()),
                SqlStorageValue::String(e.question),
                SqlStorageValue::Blob(f32_bytes(&e.embedding)),
                SqlStorageValue::Blob(codes.iter().map(|&c| c as u8).collect()),
                SqlStorageValue::Float(f64::from(scale)),
                SqlStorageValue::String(answer),
                SqlStorageValue::Integer(now as i64),
                SqlStorageValue::Integer(now as i64),
            ];
            let id = sql
                .exec("INSERT INTO semantic_entries (scope, question, embedding, codes, scale, answer, stored_at, last_used) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", values)?
                .raw()
                .next()
                .transpose()?
                .map(|r| int(&r[0]))
                .ok_or_else(|| bad("insert returned no id"))?;
            evicted.extend(self.index.borrow_mut().as_mut().expect("loaded").insert(id, &e.scope, &e.embedding, now));
        }
        for chunk in evicted.chunks(500) {
            let ids = chunk.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
            sql.exec(&format!("DELETE FROM semantic_entries WHERE id IN ({ids})"), None)?;
        }
        sql.exec("INSERT OR REPLACE INTO semantic_meta (k, v) VALUES ('ttl_s', ?)", vec![SqlStorageValue::Integer(limits.ttl_s as i64)])?;
        Ok(self.index.borrow().as_ref().map_or(0, SemanticIndex::len))
    }

    /// Deletes expired rows; returns when the next entry expires, if any remain (s).
    fn sweep(&self) -> Result<Option<u64>> {
        let sql = self.sql();
        sql.exec(SCHEMA, None)?;
        let ttl = sql.exec("SELECT v FROM semantic_meta WHERE k = 'ttl_s'", None)?.raw().next().transpose()?.map(|r| int(&r[0]));
        let Some(ttl) = ttl else { return Ok(None) };
        let now = crate::clock::now_ms() / 1000;
        sql.exec("DELETE FROM semantic_entries WHERE stored_at <= ?", vec![SqlStorageValue::Integer(now.saturating_sub(ttl) as i64)])?;
        if let Some(ix) = self.index.borrow_mut().as_mut() {
            ix.expire(now);
        }
        let oldest = sql.exec("SELECT min(stored_at) FROM semantic_entries", None)?.raw().next().transpose()?.filter(|r| !matches!(r[0], SqlStorageValue::Null)).map(|r| int(&r[0]));
        Ok(oldest.map(|o| o + ttl))
    }

    /// Makes sure an alarm will sweep the store when its oldest entry expires.
    async fn schedule_sweep(&self, ttl_s: u64) -> Result<()> {
        let storage = self.state.storage();
        if storage.get_alarm().await?.is_none() {
            storage.set_alarm((ttl_s * 1000 + 1000) as i64).await?;
        }
        Ok(())
    }
}

impl DurableObject for SemanticCache {
    fn new(state: State, _env: Env) -> Self {
        SemanticCache { state, index: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = req.text().await?;
        match req.path().as_str() {
            "/lookup" => {
                let r: LookupRequest = serde_json::from_str(&body).map_err(bad)?;
                Response::ok(serde_json::to_string(&self.lookup(r)?)?)
            }
            "/store" => {
                let (entries, limits): (Vec<StoreRequest>, Limits) = serde_json::from_str(&body).map_err(bad)?;
                let n = self.store(entries, limits)?;
                self.schedule_sweep(limits.ttl_s).await?;
                Response::ok(format!("{{\"entries\":{n}}}"))
            }
            "/stats" => {
                let sql = self.sql();
                sql.exec(SCHEMA, None)?;
                let rows = sql.exec("SELECT count(*) FROM semantic_entries", None)?.raw().next().transpose()?.map_or(0, |r| int(&r[0]));
                let ix = self.index.borrow();
                let (n, bytes) = ix.as_ref().map_or((0, 0), |ix| (ix.len(), ix.bytes()));
                Response::ok(format!("{{\"entries\":{n},\"stored_rows\":{rows},\"index_bytes\":{bytes},\"store_bytes\":{}}}", sql.database_size()))
            }
            "/purge" => {
                self.sql().exec(SCHEMA, None)?;
                self.sql().exec("DELETE FROM semantic_entries", None)?;
                if let Some(ix) = self.index.borrow_mut().as_mut() {
                    ix.clear();
                }
                Response::ok("purged")
            }
            other => Response::error(format!("no route {other}"), 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if let Some(next_s) = self.sweep()? {
            let now_s = crate::clock::now_ms() / 1000;
            self.state.storage().set_alarm((next_s.saturating_sub(now_s) * 1000 + 1000) as i64).await?;
        }
        Response::ok("swept")
    }
}
