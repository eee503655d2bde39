//! Mock provider + one regional gateway.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::proc::{bin, start_mock, Proc};

/// A random API key and its digest.
pub fn new_key() -> (String, String) {
    let key = format!("sk-test-{:032x}", rand::random::<u128>());
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    (key, digest)
}

/// What a test adds to the base config: its deployments, models and any other sections.
pub struct Setup {
    pub body: String,
    pub region: &'static str,
    /// Extra environment for the gateway process (secrets the config names).
    pub env: Vec<(String, String)>,
    /// Extra fields of the `tenant-eu` entry, e.g. `, webhook: { url: …, secret_env: … }`.
    pub tenant_eu_extra: String,
}

impl Setup {
    pub fn models(yaml: &str) -> Setup {
        Setup { body: yaml.to_string(), region: "eu", env: Vec::new(), tenant_eu_extra: String::new() }
    }
}

/// Mock + one regional gateway, with an EU tenant (`key`) and a US tenant (`us_key`).
pub struct Stack {
    pub mock: Proc,
    pub gw: Proc,
    pub key: String,
    pub us_key: String,
    pub restricted_key: String,
    /// A second English-speaking EU tenant (`tenant-eu2`): same region and models as
    /// `key`'s tenant, for isolation tests where only the tenant differs.
    pub key2: String,
    /// The edge's shared secret for `/internal/*` (as `x-meridian-internal`).
    pub internal_secret: String,
    pub http: reqwest::Client,
    pub config_path: PathBuf,
    /// The gateway's environment (workers get the same).
    pub env: Vec<(String, String)>,
}

/// A closed port: connections are refused.
pub const DEAD_URL: &str = "http://127.0.0.1:9";

impl Stack {
    pub async fn start(setup: Setup) -> Stack {
        let mock = start_mock();
        Self::start_with_mock(mock, setup)
    }

    pub fn start_with_mock(mock: Proc, setup: Setup) -> Stack {
        let (key, digest) = new_key();
        let (us_key, us_digest) = new_key();
        let (restricted_key, restricted_digest) = new_key();
        let (key2, digest2) = new_key();
        let internal_secret = format!("{:032x}", rand::random::<u128>());
        let m = &mock.url;
        let body = setup.body.replace("{mock}", m);
        let has = |section: &str| body.lines().any(|l| l.starts_with(section));
        let mut cfg = format!(
            r#"server: {{ listen: "127.0.0.1:0", region: {region}, drain_timeout_ms: 5000, internal_secret_env: MERIDIAN_INTERNAL_SECRET }}
providers:
  - {{ name: openai, kind: openai, base_url: "{m}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, region: eu }}
  - {{ name: anthropic, kind: anthropic, base_url: "{m}", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, region: us }}
  - {{ name: gemini, kind: gemini, base_url: "{m}/v1beta", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, region: eu }}
  - {{ name: deepseek, kind: deepseek, base_url: "{m}", api_key_env: MERIDIAN_TEST_PROVIDER_KEY }}
  - {{ name: mistral, kind: mistral, base_url: "{m}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY }}
  - {{ name: dead, kind: openai, base_url: "{DEAD_URL}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY }}
  - {{ name: vllm, kind: vllm, base_url: "{m}/v1", api_key_env: MERIDIAN_TEST_UNSET_KEY }}
  - {{ name: vllm-nokey, kind: vllm, base_url: "{m}/v1" }}
  - {{ name: badkey, kind: openai, base_url: "{m}/v1", api_key_env: MERIDIAN_TEST_BAD_KEY }}
tenants:
  - {{ id: tenant-eu, region: eu{tenant_eu_extra}, api_keys: [{{ name: k1, sha256: "{digest}" }}] }}
  - {{ id: tenant-us, region: us, api_keys: [{{ name: k1, sha256: "{us_digest}" }}] }}
  - {{ id: tenant-eu2, region: eu, api_keys: [{{ name: k1, sha256: "{digest2}" }}] }}
  - {{ id: tenant-restricted, region: eu, languages: [de, en], providers_in_region_only: true, allowed_models: [allowed, regional], api_keys: [{{ name: k1, sha256: "{restricted_digest}" }}] }}
"#,
            region = setup.region,
            tenant_eu_extra = setup.tenant_eu_extra
        );
        if !has("routes:") {
            cfg.push_str("routes:\n  default:\n    timeouts: { connect_ms: 500, first_byte_ms: 2000, first_token_ms: 2000, idle_ms: 1000, response_ms: 2000, total_ms: 10000 }\n    retry: { backoff_base_ms: 20, backoff_max_ms: 200 }\n");
        }
        cfg.push_str(&body);
        let dir = std::env::temp_dir().join("meridian-e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join(format!("config-{}.yaml", rand::random::<u32>()));
        std::fs::write(&config_path, &cfg).unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("MERIDIAN_TEST_PROVIDER_KEY".into(), "mock-key".into()),
            ("MERIDIAN_INTERNAL_SECRET".into(), internal_secret.clone()),
            ("MERIDIAN_TEST_BAD_KEY".into(), "invalid".into()),
            ("MERIDIAN_LOG".into(), "info".into()),
        ];
        env.extend(setup.env);
        let mut c = Command::new(bin("meridian-regional"));
        c.arg("serve").arg("--config").arg(&config_path).envs(env.iter().map(|(k, v)| (k, v)));
        let gw = Proc::spawn(c, "regional");
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        Stack { mock, gw, key, us_key, restricted_key, key2, internal_secret, http, config_path, env }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gw.url)
    }

    /// Another replica of the regional backend: the same config, the same stores.
    pub fn replica(&self) -> Proc {
        let mut c = Command::new(bin("meridian-regional"));
        c.arg("serve").arg("--config").arg(&self.config_path).envs(self.env.iter().map(|(k, v)| (k, v)));
        Proc::spawn(c, "regional-replica")
    }

    /// A media worker process for `queue` (image, audio, video) on this stack's config.
    pub fn start_worker(&self, queue: &str) -> Proc {
        self.start_worker_with(queue, &[])
    }

    /// The same with extra arguments (e.g. `--concurrency 2`).
    pub fn start_worker_with(&self, queue: &str, args: &[&str]) -> Proc {
        let mut c = Command::new(bin("meridian-regional"));
        c.args(["worker", "--media", queue]).args(args).arg("--config").arg(&self.config_path).envs(self.env.iter().map(|(k, v)| (k, v)));
        Proc::spawn(c, &format!("worker-{queue}"))
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(key).json(body).send().await.expect("gateway answers")
    }

    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.post("/v1/chat/completions", &self.key, &body).await
    }

    /// Non-stream chat: (status, headers, JSON body).
    pub async fn chat_json(&self, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self.chat(body).await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, headers, v)
    }

    /// Attempts the mock received for models whose name contains `model`.
    pub async fn attempts(&self, model: &str) -> Vec<Value> {
        let v: Value = self.http.get(format!("{}/_mock/attempts", self.mock.url)).query(&[("model", model)]).send().await.unwrap().json().await.unwrap();
        v["attempts"].as_array().cloned().unwrap_or_default()
    }
}

pub fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

pub fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A recorded provider payload from `tests/fixtures/providers/` (sources in its SOURCES.md).
pub fn fixture(path: &str) -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/providers")).join(path);
    assert!(p.exists(), "fixture {} missing", p.display());
    p
}

/// The complete answer the mock gives to `question` (asked directly, no faults).
pub async fn mock_answer(s: &Stack, question: &str) -> String {
    mock_answer_at(&s.mock.url, question).await
}

/// The same, from the mock at `mock_url`.
pub async fn mock_answer_at(mock_url: &str, question: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{mock_url}/v1/chat/completions"))
        .bearer_auth("k")
        .json(&json!({"model": "reference", "messages": user(question)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["choices"][0]["message"]["content"].as_str().unwrap().to_string()
}
