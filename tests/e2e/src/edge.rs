//! The whole stack behind the edge: the mock (also the IdP's JWKS endpoint), regional
//! backends for EU and US, and the Worker running in real workerd.

use std::io::{BufRead, BufReader};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::idp::Idp;
use crate::proc::{bin, start_mock_with, Proc};
use crate::stack::new_key;

pub const INTERNAL_SECRET: &str = "internal-test-secret-0123456789";

/// The Worker bundle `scripts/test` builds (`MERIDIAN_EDGE_BUILD` overrides).
fn edge_build() -> PathBuf {
    let p = std::env::var_os("MERIDIAN_EDGE_BUILD").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../edge/build")));
    assert!(p.join("index.js").exists() && p.join("index_bg.wasm").exists(), "the edge is not built at {}: run scripts/test (or scripts/build-edge)", p.display());
    p
}

fn workerd() -> PathBuf {
    let p = std::env::var_os("MERIDIAN_WORKERD").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/meridian/node/node_modules/.bin/workerd")
    });
    assert!(p.exists(), "workerd not found at {}: run scripts/test", p.display());
    p
}

/// A Cap'n Proto text literal.
fn capnp_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Starts workerd with the Worker, `bindings` as text bindings; ready when it reports
/// its port on the control fd.
pub fn start_workerd(config_yaml: &str, bindings: &[(&str, &str)]) -> Proc {
    let build = edge_build();
    let dir = std::env::temp_dir().join(format!("meridian-workerd-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(dir.join("do")).unwrap();
    for f in ["index.js", "index_bg.wasm"] {
        std::fs::copy(build.join(f), dir.join(f)).unwrap();
    }
    let mut b: Vec<String> = vec![format!("(name = \"MERIDIAN_CONFIG\", text = {})", capnp_str(config_yaml))];
    b.extend(bindings.iter().map(|(k, v)| format!("(name = {}, text = {})", capnp_str(k), capnp_str(v))));
    b.push("(name = \"RATE_LIMITER\", durableObjectNamespace = \"RateLimiter\")".into());
    b.push("(name = \"RESPONSE_CACHE\", durableObjectNamespace = \"ResponseCache\")".into());
    b.push("(name = \"SEMANTIC_CACHE\", durableObjectNamespace = \"SemanticCache\")".into());
    let capnp = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edge),
    (name = "internet", network = (allow = ["public", "private", "local"])),
    (name = "storage", disk = (path = {storage}, writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
const edge :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "2026-04-01",
  bindings = [{bindings}],
  durableObjectNamespaces = [
    (className = "RateLimiter", uniqueKey = "meridian-rate-limiter", enableSql = true),
    (className = "ResponseCache", uniqueKey = "meridian-response-cache", enableSql = true),
    (className = "SemanticCache", uniqueKey = "meridian-semantic-cache", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "storage"),
  globalOutbound = "internet",
);
"#,
        storage = capnp_str(dir.join("do").to_str().unwrap()),
        bindings = b.join(",\n    ")
    );
    std::fs::write(dir.join("edge.capnp"), capnp).unwrap();
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let (read_fd, write_fd) = (fds[0], fds[1]);
    let stderr_path = Proc::log_path("workerd");
    let mut cmd = Command::new(workerd());
    cmd.current_dir(&dir).args(["serve", "edge.capnp", "--control-fd=3"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&stderr_path).unwrap());
    // SAFETY: dup2 and close are async-signal-safe; the child only rewires fds before exec.
    unsafe {
        cmd.pre_exec(move || {
            // Dies with its parent, even one killed without running destructors.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            // Close the read end first: it may itself be fd 3.
            libc::close(read_fd);
            if libc::dup2(write_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn workerd");
    unsafe { libc::close(write_fd) };
    let control = unsafe { std::fs::File::from_raw_fd(read_fd) };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(control).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["event"] == "listen" {
                    let _ = tx.send(v["port"].as_u64().unwrap_or(0));
                }
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("workerd did not start: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default()));
    let mut p = Proc::from_child(child, format!("http://127.0.0.1:{port}"), stderr_path);
    p.scratch = Some(dir);
    p
}

/// What a test adds: deployments, models and any extra sections, plus the limits of the
/// `tenant-limited` tenant.
pub struct EdgeSetup {
    pub body: String,
    pub limited: String,
    /// Extra config and environment for the EU regional backend only (its data plane).
    pub eu_extra: (String, Vec<(String, String)>),
}

impl EdgeSetup {
    pub fn models(yaml: &str) -> EdgeSetup {
        EdgeSetup { body: yaml.to_string(), limited: "{}".into(), eu_extra: Default::default() }
    }

    pub fn with_eu_data(mut self, data: &crate::DataServices) -> EdgeSetup {
        self.eu_extra = (data.yaml(""), data.env());
        self
    }

    pub fn limited(mut self, limits: &str) -> EdgeSetup {
        self.limited = limits.to_string();
        self
    }
}

pub struct EdgeStack {
    pub mock: Proc,
    pub eu: Proc,
    pub us: Option<Proc>,
    pub edge: Proc,
    pub idp: Idp,
    /// API keys: tenant-eu, tenant-b (eu), tenant-us, tenant-limited (eu), a chat-only key of tenant-eu.
    pub key_eu: String,
    pub key_b: String,
    pub key_us: String,
    pub key_limited: String,
    pub key_chat_only: String,
    /// `tenant-admin` keys of tenant-eu and tenant-b, a `tenant-viewer` key of tenant-eu.
    pub key_admin: String,
    pub key_b_admin: String,
    pub key_viewer: String,
    /// The EU backend's config file and environment (for its command-line tools).
    pub eu_config: std::path::PathBuf,
    pub eu_env: Vec<(String, String)>,
    pub http: reqwest::Client,
}

impl EdgeStack {
    pub async fn start(setup: EdgeSetup) -> EdgeStack {
        let idp = Idp::new();
        let mock = start_mock_with(&["--jwks", idp.jwks_path.to_str().unwrap()]);
        let keys: Vec<(String, String)> = (0..8).map(|_| new_key()).collect();
        let config = |region: &str, eu: &str, us: &str| {
            let m = &mock.url;
            let body = setup.body.replace("{mock}", m);
            let has = |section: &str| body.lines().any(|l| l.starts_with(section));
            let mut c = format!(
                r#"server: {{ listen: "127.0.0.1:0", region: {region}, internal_secret_env: MERIDIAN_INTERNAL_SECRET }}
providers:
  - {{ name: openai, kind: openai, base_url: "{m}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, region: eu }}
  - {{ name: anthropic, kind: anthropic, base_url: "{m}", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, region: us }}
  - {{ name: gemini, kind: gemini, base_url: "{m}/v1beta", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, region: eu }}
  - {{ name: dead, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY }}
  - {{ name: vllm, kind: vllm, base_url: "{m}/v1", api_key_env: MERIDIAN_TEST_UNSET_KEY }}
  - {{ name: vllm-nokey, kind: vllm, base_url: "{m}/v1" }}
roles:
  admin: {{ models: ["*"], routes: ["*"] }}
  chat-small: {{ models: [small], routes: [chat, models] }}
jwt:
  issuer: https://idp.test
  audience: [meridian]
  algorithms: [HS256, RS256, ES256, EdDSA]
  hmac_secret_env: JWT_HMAC
  jwks_url: "{m}/_idp/jwks.json"
  leeway_secs: 5
edge:
  regions: {{ eu: "{eu}", us: "{us}" }}
tenants:
  - {{ id: tenant-eu, region: eu, api_keys: [{{ name: k, sha256: "{d0}" }}, {{ name: chat-only, sha256: "{d4}", roles: [chat-small] }}, {{ name: admin, sha256: "{d5}", roles: [tenant-admin] }}, {{ name: viewer, sha256: "{d7}", roles: [tenant-viewer] }}] }}
  - {{ id: tenant-b, region: eu, api_keys: [{{ name: k, sha256: "{d1}" }}, {{ name: admin, sha256: "{d6}", roles: [tenant-admin] }}] }}
  - {{ id: tenant-us, region: us, api_keys: [{{ name: k, sha256: "{d2}" }}] }}
  - {{ id: tenant-limited, region: eu, limits: {limited}, api_keys: [{{ name: k, sha256: "{d3}" }}] }}
"#,
                d0 = keys[0].1,
                d1 = keys[1].1,
                d2 = keys[2].1,
                d3 = keys[3].1,
                d4 = keys[4].1,
                d5 = keys[5].1,
                d6 = keys[6].1,
                d7 = keys[7].1,
                limited = setup.limited,
            );
            if !has("routes:") {
                c.push_str("routes:\n  default:\n    timeouts: { connect_ms: 500, first_byte_ms: 2000, first_token_ms: 2000, idle_ms: 1000, response_ms: 2000, total_ms: 10000 }\n    retry: { backoff_base_ms: 20, backoff_max_ms: 200 }\n");
            }
            c.push_str(&body);
            c
        };
        // Regions first (their URLs go into the edge's config); the placeholder URLs in
        // their own copy are never used by a regional backend.
        let base_env: Vec<(String, String)> = vec![("MERIDIAN_TEST_PROVIDER_KEY".into(), "mock-key".into()), ("MERIDIAN_INTERNAL_SECRET".into(), INTERNAL_SECRET.into()), ("JWT_HMAC".into(), idp.hmac_secret.clone())];
        let regional = |region: &str| {
            let dir = std::env::temp_dir().join("meridian-e2e");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("config-{region}-{}.yaml", rand::random::<u32>()));
            let mut text = config(region, "http://unused", "http://unused");
            let mut c = Command::new(bin("meridian-regional"));
            if region == "eu" {
                text.push_str(&setup.eu_extra.0.replace("{mock}", &mock.url));
                c.envs(setup.eu_extra.1.iter().map(|(k, v)| (k, v)));
            }
            std::fs::write(&path, text).unwrap();
            c.arg("serve").arg("--config").arg(&path).envs(base_env.iter().map(|(k, v)| (k, v)));
            (Proc::spawn(c, &format!("regional-{region}")), path)
        };
        let (eu, eu_config) = regional("eu");
        let (us, _) = regional("us");
        let mut eu_env = base_env.clone();
        eu_env.extend(setup.eu_extra.1.iter().cloned());
        let edge_cfg = config("eu", &eu.url, &us.url);
        let edge = start_workerd(&edge_cfg, &[("MERIDIAN_TEST_PROVIDER_KEY", "mock-key"), ("MERIDIAN_INTERNAL_SECRET", INTERNAL_SECRET), ("JWT_HMAC", &idp.hmac_secret)]);
        EdgeStack {
            mock,
            eu,
            us: Some(us),
            edge,
            idp,
            key_eu: keys[0].0.clone(),
            key_b: keys[1].0.clone(),
            key_us: keys[2].0.clone(),
            key_limited: keys[3].0.clone(),
            key_chat_only: keys[4].0.clone(),
            key_admin: keys[5].0.clone(),
            key_b_admin: keys[6].0.clone(),
            key_viewer: keys[7].0.clone(),
            eu_config,
            eu_env,
            http: reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.edge.url)
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("edge answers")
    }

    pub async fn chat(&self, token: &str, body: Value) -> reqwest::Response {
        self.post("/v1/chat/completions", token, &body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(token).send().await.expect("edge answers")
    }

    /// Attempts the mock received for models whose name contains `model`.
    pub async fn attempts(&self, model: &str) -> Vec<Value> {
        let v: Value = self.http.get(format!("{}/_mock/attempts", self.mock.url)).query(&[("model", model)]).send().await.unwrap().json().await.unwrap();
        v["attempts"].as_array().cloned().unwrap_or_default()
    }

    /// Claims for a valid token of `tenant` with `roles`, expiring in 10 minutes.
    pub fn claims(tenant: &str, roles: &[&str]) -> Value {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        json!({"iss": "https://idp.test", "aud": "meridian", "sub": "user-1", "tenant": tenant, "roles": roles, "iat": now, "nbf": now - 1, "exp": now + 600})
    }

    /// Waits (bounded) until the home region's admin report holds `n` events.
    pub async fn usage_events(&self, token: &str, at_least: usize) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            let r = self.get("/v1/admin/usage", token).await;
            last = r.json().await.unwrap_or(Value::Null);
            if last["events"].as_array().is_some_and(|e| e.len() >= at_least) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        last
    }
}
