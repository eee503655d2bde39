//! Usage rollups: counters per tenant × hour × model × feature × user, kept up to date as
//! events arrive (a batch is grouped here, then one upsert per tenant adds its groups),
//! and the usage summaries every report is served from — never a scan of raw events.

use std::collections::BTreeMap;

use meridian_shared::api::GatewayError;
use meridian_shared::usage::UsageEvent;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Row, Transaction};

use crate::db::Db;

/// One group's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cost_micro_usd: i64,
    pub saved_micro_usd: i64,
    pub cache_hits: i64,
    pub interrupted: i64,
}

impl Counters {
    fn add(&mut self, e: &UsageEvent) {
        self.requests += 1;
        self.prompt_tokens += e.prompt_tokens as i64;
        self.completion_tokens += e.completion_tokens as i64;
        self.cached_tokens += e.cached_tokens as i64;
        self.cost_micro_usd += (e.cost_usd.unwrap_or(0.0) * 1e6).round() as i64;
        self.saved_micro_usd += (e.saved_usd.unwrap_or(0.0) * 1e6).round() as i64;
        self.cache_hits += i64::from(e.cache.is_some());
        self.interrupted += i64::from(e.interrupted);
    }
}

/// The group of an event within its hour.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    pub model: String,
    pub feature: String,
    pub subject: String,
}

/// A batch of one tenant's events, grouped.
pub fn group(events: &[&UsageEvent]) -> BTreeMap<Group, Counters> {
    let mut out: BTreeMap<Group, Counters> = BTreeMap::new();
    for e in events {
        let g = Group { model: e.model.clone(), feature: e.feature.clone().unwrap_or_default(), subject: e.user.clone() };
        out.entry(g).or_default().add(e);
    }
    out
}

/// Adds `groups` to the tenant's rollups of the current hour, inside `tx` (a tenant
/// transaction).
pub async fn add(tx: &mut Transaction<'static, Postgres>, tenant: &str, groups: &BTreeMap<Group, Counters>) -> Result<(), sqlx::Error> {
    let rows: Vec<(Option<i64>, &Group, &Counters)> = groups.iter().map(|(g, c)| (None, g, c)).collect();
    add_rows(tx, tenant, &rows).await
}

/// Adds rows of (hour — a Unix second at an hour's start, `None`: the current hour —,
/// group, counters) to the tenant's rollups, in one statement.
pub async fn add_rows(tx: &mut Transaction<'static, Postgres>, tenant: &str, rows: &[(Option<i64>, &Group, &Counters)]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Counters) -> i64| rows.iter().map(|(_, _, c)| f(c)).collect::<Vec<i64>>();
    let text = |f: fn(&Group) -> &str| rows.iter().map(|(_, g, _)| f(g).to_string()).collect::<Vec<String>>();
    sqlx::query(
        "INSERT INTO usage_rollups (tenant_id, hour, model, feature, subject, requests, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd, saved_micro_usd, cache_hits, interrupted)
         SELECT $1, COALESCE(to_timestamp(h), date_trunc('hour', now())), m, f, s, r, p, c, ca, co, sa, ch, i
         FROM unnest($2::float8[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])
              AS u(h, m, f, s, r, p, c, ca, co, sa, ch, i)
         ON CONFLICT (tenant_id, hour, model, feature, subject) DO UPDATE SET
           requests = usage_rollups.requests + excluded.requests, prompt_tokens = usage_rollups.prompt_tokens + excluded.prompt_tokens,
           completion_tokens = usage_rollups.completion_tokens + excluded.completion_tokens, cached_tokens = usage_rollups.cached_tokens + excluded.cached_tokens,
           cost_micro_usd = usage_rollups.cost_micro_usd + excluded.cost_micro_usd, saved_micro_usd = usage_rollups.saved_micro_usd + excluded.saved_micro_usd,
           cache_hits = usage_rollups.cache_hits + excluded.cache_hits, interrupted = usage_rollups.interrupted + excluded.interrupted",
    )
    .bind(tenant)
    .bind(rows.iter().map(|(h, _, _)| h.map(|h| h as f64)).collect::<Vec<Option<f64>>>())
    .bind(text(|g| &g.model))
    .bind(text(|g| &g.feature))
    .bind(text(|g| &g.subject))
    .bind(col(|c| c.requests))
    .bind(col(|c| c.prompt_tokens))
    .bind(col(|c| c.completion_tokens))
    .bind(col(|c| c.cached_tokens))
    .bind(col(|c| c.cost_micro_usd))
    .bind(col(|c| c.saved_micro_usd))
    .bind(col(|c| c.cache_hits))
    .bind(col(|c| c.interrupted))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What a summary is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Day,
    Hour,
    Model,
    Feature,
    User,
}

impl GroupBy {
    fn expr(self) -> &'static str {
        match self {
            GroupBy::Day => "to_char(date_trunc('day', hour) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            GroupBy::Hour => "to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00\"Z\"')",
            GroupBy::Model => "model",
            GroupBy::Feature => "feature",
            GroupBy::User => "subject",
        }
    }

    fn by_time(self) -> bool {
        matches!(self, GroupBy::Day | GroupBy::Hour)
    }
}

/// The longest period one summary covers, and the most rows it returns.
pub const MAX_RANGE_DAYS: i64 = 400;
pub const MAX_ROWS: i64 = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub key: String,
    #[serde(flatten)]
    pub counters: Counters,
    pub cost_usd: f64,
}

/// The tenant's usage from `from` to `to` (Unix seconds, `to` exclusive), grouped: time
/// groups in order, the others by cost, most first, at most `limit`.
pub async fn summary(db: &Db, tenant: &str, from: i64, to: i64, by: GroupBy, limit: i64) -> Result<Vec<SummaryRow>, GatewayError> {
    if to <= from || (to - from) > MAX_RANGE_DAYS * 86_400 {
        return Err(GatewayError::invalid_param(format!("the period must be positive and at most {MAX_RANGE_DAYS} days"), "from"));
    }
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(GatewayError::invalid_param(format!("`limit` must be 1 to {MAX_ROWS}"), "limit"));
    }
    let order = if by.by_time() { "1" } else { "cost_micro_usd DESC, 1" };
    let sql = format!(
        "SELECT {key} AS key, sum(requests)::bigint AS requests, sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens,
                sum(cached_tokens)::bigint AS cached_tokens, sum(cost_micro_usd)::bigint AS cost_micro_usd, sum(saved_micro_usd)::bigint AS saved_micro_usd,
                sum(cache_hits)::bigint AS cache_hits, sum(interrupted)::bigint AS interrupted
         FROM usage_rollups WHERE tenant_id = $1 AND hour >= to_timestamp($2) AND hour < to_timestamp($3)
         GROUP BY 1 ORDER BY {order} LIMIT $4",
        key = by.expr()
    );
    let unavailable = |e: sqlx::Error| {
        tracing::error!(error = %e, "usage summary failed");
        GatewayError::Unavailable("usage is unavailable right now; try again".into())
    };
    let mut tx = db.tenant_tx(tenant).await.map_err(unavailable)?;
    let rows = sqlx::query(&sql).bind(tenant).bind(from as f64).bind(to as f64).bind(limit).fetch_all(&mut *tx).await.map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|r| {
            let counters = Counters {
                requests: r.get("requests"),
                prompt_tokens: r.get("prompt_tokens"),
                completion_tokens: r.get("completion_tokens"),
                cached_tokens: r.get("cached_tokens"),
                cost_micro_usd: r.get("cost_micro_usd"),
                saved_micro_usd: r.get("saved_micro_usd"),
                cache_hits: r.get("cache_hits"),
                interrupted: r.get("interrupted"),
            };
            SummaryRow { key: r.get("key"), cost_usd: counters.cost_micro_usd as f64 / 1e6, counters }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_grouped_by_model_feature_and_user() {
        let mut a = UsageEvent::for_user("t", "alice", "eu", Some("support".into()));
        a.model = "m".into();
        a.prompt_tokens = 10;
        a.cost_usd = Some(0.5);
        let mut b = a.clone();
        b.completion_tokens = 3;
        b.interrupted = true;
        let mut c = a.clone();
        c.user = "bob".into();
        c.cache = Some("exact".into());
        let g = group(&[&a, &b, &c]);
        assert_eq!(g.len(), 2);
        let alice = &g[&Group { model: "m".into(), feature: "support".into(), subject: "alice".into() }];
        assert_eq!((alice.requests, alice.prompt_tokens, alice.completion_tokens, alice.cost_micro_usd, alice.interrupted), (2, 20, 3, 1_000_000, 1));
        assert_eq!(g[&Group { model: "m".into(), feature: "support".into(), subject: "bob".into() }].cache_hits, 1);
    }
}
