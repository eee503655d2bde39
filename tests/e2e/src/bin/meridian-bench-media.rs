//! Media job benchmark (run by `scripts/bench-media`): the regional API and worker
//! processes (release builds) on real PostgreSQL, Redis and s3s-fs, the mock image
//! provider (256×256 PNGs).
//!
//! 1. Enqueue latency: 200 concurrent submitters each POST `jobs_per_submitter` async
//!    image jobs (202 expected) while no worker runs, so the figure is the API's own cost
//!    (validation, sealed row in PostgreSQL, XADD, the queued event).
//! 2. Throughput: for N worker processes (each `--concurrency 4`), a fresh batch of jobs
//!    is enqueued with no worker running, then the workers start and the time until every
//!    job of the batch has succeeded is measured (counted in PostgreSQL).
//!
//! Usage: meridian-bench-media [jobs_per_submitter=10] [batch=600]; prints one JSON object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_e2e::{DataServices, Setup, Stack};
use serde_json::json;

const MEDIA: &str = r#"
deployments:
  - { name: oa, provider: openai, model: gpt-4o }
models:
  - { name: allowed, deployments: [oa] }
limits: { requests_per_minute: 1000000 }
media:
  deployments:
    - { name: oa-image, provider: openai, base_url: "{mock}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: gpt-image-1, kind: image }
  models:
    - { name: image, kind: image, deployments: [oa-image] }
  queue: { per_tenant_concurrency: 64, visibility_ms: 30000 }
"#;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    (v[i] * 100.0).round() / 100.0
}

async fn succeeded(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM media_jobs WHERE status = 'succeeded'").fetch_one(pool).await.unwrap()
}

async fn submit_all(s: Arc<Stack>, submitters: usize, each: usize, tag: &str) -> Vec<f64> {
    let mut tasks = Vec::new();
    for i in 0..submitters {
        let s = s.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(each);
            for j in 0..each {
                let body = json!({"model": "image", "prompt": format!("{tag} {i} {j}"), "size": "256x256", "async": true});
                let t = Instant::now();
                let r = s.http.post(s.url("/v1/images/generations")).bearer_auth(&s.key).json(&body).send().await.unwrap();
                let st = r.status().as_u16();
                r.bytes().await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(st, 202);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (each, batch) = (args.first().copied().unwrap_or(10), args.get(1).copied().unwrap_or(600));
    let data = DataServices::start("eu").await;
    let mut setup = Setup::models(&format!("{MEDIA}{}", data.yaml("")));
    setup.env = data.env();
    let s = Arc::new(Stack::start(setup).await);
    let pool = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{}/meridian", data.pg.port)).await.unwrap();

    // 1. Enqueue latency: one submitter (the API's own cost), then 200 concurrent
    // submitters, no worker running.
    submit_all(s.clone(), 20, 5, "warm-up").await;
    let mut one = submit_all(s.clone(), 1, 200, "alone").await;
    let single = json!({"submitters": 1, "jobs": one.len(), "p50_ms": pct(&mut one, 0.5), "p95_ms": pct(&mut one, 0.95), "p99_ms": pct(&mut one, 0.99)});
    let t = Instant::now();
    let mut lat = submit_all(s.clone(), 200, each, "enqueue").await;
    let wall = t.elapsed().as_secs_f64();
    let enqueue = json!({"submitters": 200, "jobs": lat.len(), "p50_ms": pct(&mut lat, 0.5), "p95_ms": pct(&mut lat, 0.95), "p99_ms": pct(&mut lat, 0.99), "max_ms": pct(&mut lat, 1.0), "jobs_per_s": (lat.len() as f64 / wall).round()});
    eprintln!("enqueue: {enqueue}");

    // Drain what is queued so far with one worker, then measure batches.
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM media_jobs").fetch_one(&pool).await.unwrap();
    {
        let _w = s.start_worker_with("image", &["--concurrency", "4"]);
        while succeeded(&pool).await < queued {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let mut throughput = Vec::new();
    for workers in [1usize, 2, 4] {
        let before = succeeded(&pool).await;
        submit_all(s.clone(), 50, batch / 50, &format!("batch-{workers}")).await;
        let target = before + batch as i64;
        let procs: Vec<_> = (0..workers).map(|_| s.start_worker_with("image", &["--concurrency", "4"])).collect();
        // Timed from when every worker is ready; what finished during start-up is excluded.
        let (t, done_at_start) = (Instant::now(), succeeded(&pool).await);
        while succeeded(&pool).await < target {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        drop(procs);
        let jobs = target - done_at_start;
        let row = json!({"worker_processes": workers, "concurrency_each": 4, "jobs_timed": jobs, "seconds": (secs * 100.0).round() / 100.0, "jobs_per_s": (jobs as f64 / secs * 10.0).round() / 10.0});
        eprintln!("throughput: {row}");
        throughput.push(row);
    }
    println!("{}", json!({"enqueue_single": single, "enqueue": enqueue, "throughput": throughput, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)}));
}
