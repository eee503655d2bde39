//! Usage reports at scale (run by `scripts/bench-usage`): TENANTS tenants with
//! EVENTS_PER_TENANT usage events each, spread over 30 days, 5 models, 4 features and 25
//! users, aggregated by the regional host's own rollup code into `usage_rollups` in a
//! real PostgreSQL; then every summary the admin API offers, timed for random tenants
//! under row-level security. (Raw events are not written: no usage query reads them.)
//!
//! Usage: meridian-bench-usage [TENANTS=1000] [EVENTS_PER_TENANT=10000]; prints JSON.

use std::collections::BTreeMap;
use std::time::Instant;

use meridian_e2e::Postgres;
use meridian_regional::db::Db;
use meridian_regional::usage::rollup::{self, Counters, Group, GroupBy};
use meridian_shared::usage::UsageEvent;
use rand::{Rng, SeedableRng};
use serde_json::json;

const MODELS: [&str; 5] = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.0-flash", "mistral-small"];
const FEATURES: [&str; 4] = ["support", "drafts", "legal-review", ""];
const DAYS: i64 = 30;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    (v[i] * 1000.0).round() / 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tenants: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let per_tenant: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let pg = Postgres::start();
    let db = Db::connect(&pg.app_database("usage_bench").await, 8).await.unwrap();
    db.migrate().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let end = (meridian_regional::clock::unix_secs() as i64 / 3600) * 3600;
    let start = end - DAYS * 86_400;
    let t0 = Instant::now();
    let mut rows_total = 0usize;
    for t in 0..tenants {
        let tenant = format!("tenant-{t:04}");
        db.create_tenant(&tenant, "eu").await.unwrap();
        // This tenant's events, grouped per hour by the host's own code.
        let mut by_hour: BTreeMap<i64, Vec<UsageEvent>> = BTreeMap::new();
        for _ in 0..per_tenant {
            let mut e = UsageEvent::for_user(&tenant, &format!("user-{:02}", rng.gen_range(0..25)), "eu", Some(FEATURES[rng.gen_range(0..FEATURES.len())].to_string()).filter(|f| !f.is_empty()));
            e.model = MODELS[rng.gen_range(0..MODELS.len())].to_string();
            e.prompt_tokens = rng.gen_range(20..2_000);
            e.completion_tokens = rng.gen_range(10..800);
            e.cost_usd = Some((e.prompt_tokens as f64 * 2.5 + e.completion_tokens as f64 * 10.0) / 1e6);
            if rng.gen_bool(0.1) {
                e.cache = Some("exact".into());
            }
            let hour = start + rng.gen_range(0..DAYS * 24) * 3600;
            by_hour.entry(hour).or_default().push(e);
        }
        let grouped: Vec<(i64, BTreeMap<Group, Counters>)> = by_hour.iter().map(|(h, evs)| (*h, rollup::group(&evs.iter().collect::<Vec<_>>()))).collect();
        let rows: Vec<(Option<i64>, &Group, &Counters)> = grouped.iter().flat_map(|(h, g)| g.iter().map(move |(g, c)| (Some(*h), g, c))).collect();
        rows_total += rows.len();
        let mut tx = db.tenant_tx(&tenant).await.unwrap();
        for chunk in rows.chunks(5_000) {
            rollup::add_rows(&mut tx, &tenant, chunk).await.unwrap();
        }
        tx.commit().await.unwrap();
        if t % 100 == 99 {
            eprintln!("loaded {} tenants, {} rollup rows, {:.0} s", t + 1, rows_total, t0.elapsed().as_secs_f64());
        }
    }
    let load_s = t0.elapsed().as_secs_f64();
    {
        let mut tx = db.untenanted_tx().await.unwrap();
        sqlx::query("ANALYZE usage_rollups").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    // Every summary the API offers, for random tenants.
    let queries: [(&str, GroupBy, i64); 6] = [
        ("30 days by day", GroupBy::Day, DAYS * 86_400),
        ("30 days by model", GroupBy::Model, DAYS * 86_400),
        ("30 days by feature", GroupBy::Feature, DAYS * 86_400),
        ("30 days by user", GroupBy::User, DAYS * 86_400),
        ("7 days by hour", GroupBy::Hour, 7 * 86_400),
        ("1 day by model", GroupBy::Model, 86_400),
    ];
    let mut results = Vec::new();
    for (name, by, span) in queries {
        let mut ms = Vec::new();
        for _ in 0..300 {
            let tenant = format!("tenant-{:04}", rng.gen_range(0..tenants));
            let q0 = Instant::now();
            let rows = rollup::summary(&db, &tenant, end - span, end, by, 1_000).await.unwrap();
            ms.push(q0.elapsed().as_secs_f64() * 1000.0);
            assert!(!rows.is_empty());
        }
        results.push(json!({"query": name, "n": ms.len(), "p50_ms": pct(&mut ms, 0.5), "p95_ms": pct(&mut ms, 0.95), "p99_ms": pct(&mut ms, 0.99)}));
    }
    let size: i64 = {
        let mut tx = db.untenanted_tx().await.unwrap();
        sqlx::query_scalar("SELECT pg_total_relation_size('usage_rollups')").fetch_one(&mut *tx).await.unwrap()
    };
    println!(
        "{}",
        json!({"tenants": tenants, "events": tenants * per_tenant, "rollup_rows": rows_total, "table_mib": size / (1024 * 1024), "load_s": (load_s * 10.0).round() / 10.0,
               "events_per_s": ((tenants * per_tenant) as f64 / load_s).round(), "queries": results})
    );
}
