//! The control plane's keys and audit log, end to end: the admin API through the edge,
//! PostgreSQL in the EU region (real cluster), the Worker in workerd resolving the keys
//! it issues, revocation at the edge within the stated bound, tenant and region
//! isolation, stale writes, idempotency, rotation, and the audit chain with tampering.

use std::time::{Duration, Instant};

use meridian_e2e::*;
use serde_json::{json, Value};

const MODELS: &str = "deployments:\n  - { name: d, provider: openai, model: gpt-x }\nmodels:\n  - { name: m, deployments: [d] }\n";

async fn stack() -> (EdgeStack, DataServices) {
    let data = DataServices::start("eu").await;
    let s = EdgeStack::start(EdgeSetup::models(MODELS).with_eu_data(&data)).await;
    (s, data)
}

async fn send(s: &EdgeStack, method: reqwest::Method, path: &str, key: &str, body: Option<Value>, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = s.http.request(method, s.url(path)).bearer_auth(key);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    (status, h, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn create(s: &EdgeStack, key: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    send(s, reqwest::Method::POST, "/v1/admin/keys", key, Some(body), &[]).await
}

async fn chat_status(s: &EdgeStack, key: &str) -> u16 {
    s.chat(key, json!({"model": "m", "messages": user("hi")})).await.status().as_u16()
}

#[tokio::test]
async fn an_issued_key_works_at_the_edge_and_its_revocation_takes_effect_within_the_bound() {
    let (s, _data) = stack().await;
    let (status, h, k) = create(&s, &s.key_admin, json!({"name": "ci", "roles": ["chat-small", "admin"]})).await;
    assert_eq!(status, 201, "{k}");
    let secret = k["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mk-eu-") && secret.len() == 38, "{secret}");
    assert_eq!(k["prefix"].as_str().unwrap(), &secret[..13]);
    assert_eq!(header(&h, "etag"), "\"1\"");
    // The new key works at once, through the edge.
    assert_eq!(chat_status(&s, &secret).await, 200);
    // Listed without its secret or digest, ever.
    let (_, _, list) = send(&s, reqwest::Method::GET, "/v1/admin/keys", &s.key_viewer, None, &[]).await;
    let text = list.to_string();
    assert!(!text.contains(&secret) && !text.contains("sha256") && !text.contains("secret"), "{text}");
    assert!(list["data"].as_array().unwrap().iter().any(|x| x["id"] == k["id"]));
    // Revoked: refused at the edge within control.key_cache_ms (2 s) of the revocation.
    let id = k["id"].as_str().unwrap();
    let (status, _, revoked) = send(&s, reqwest::Method::DELETE, &format!("/v1/admin/keys/{id}"), &s.key_admin, None, &[]).await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].as_i64().is_some());
    let t0 = Instant::now();
    let mut refused_after = None;
    while t0.elapsed() < Duration::from_secs(6) {
        if chat_status(&s, &secret).await == 401 {
            refused_after = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = refused_after.expect("the revoked key is refused at the edge");
    eprintln!("revocation took effect at the edge after {} ms", after.as_millis());
    assert!(after <= Duration::from_millis(2_000 + 500), "bound: key_cache_ms (2 s) + one request; took {after:?}");
    // And the region itself refuses it.
    let r = s.http.post(format!("{}/v1/chat/completions", s.eu.url)).bearer_auth(&secret).json(&json!({"model": "m", "messages": user("hi")})).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn viewers_read_only_admins_change_and_nobody_else_reads() {
    let (s, _data) = stack().await;
    let (status, _, _) = send(&s, reqwest::Method::GET, "/v1/admin/keys", &s.key_viewer, None, &[]).await;
    assert_eq!(status, 200);
    for key in [&s.key_viewer, &s.key_eu] {
        let (status, _, e) = create(&s, key, json!({"name": "nope"})).await;
        assert_eq!(status, 403, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("tenant-admin"));
    }
    let (status, _, _) = send(&s, reqwest::Method::GET, "/v1/admin/keys", &s.key_chat_only, None, &[]).await;
    assert_eq!(status, 403, "a chat-only role may not use admin routes");
    let (_, _, list) = send(&s, reqwest::Method::GET, "/v1/admin/keys", &s.key_admin, None, &[]).await;
    assert!(list["data"].as_array().unwrap().iter().all(|k| k["name"] != "nope"), "nothing was created");
}

#[tokio::test]
async fn a_tenant_never_sees_or_changes_another_tenants_keys() {
    let (s, _data) = stack().await;
    let (_, _, k) = create(&s, &s.key_admin, json!({"name": "eu-only"})).await;
    let id = k["id"].as_str().unwrap();
    let secret = k["secret"].as_str().unwrap();
    let b = &s.key_b_admin;
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/v1/admin/keys/{id}"), None),
        (reqwest::Method::PATCH, format!("/v1/admin/keys/{id}"), Some(json!({"name": "stolen"}))),
        (reqwest::Method::DELETE, format!("/v1/admin/keys/{id}"), None),
        (reqwest::Method::POST, format!("/v1/admin/keys/{id}/rotate"), Some(json!({}))),
    ] {
        let (status, _, e) = send(&s, method.clone(), &path, b, body, &[("if-match", "*")]).await;
        assert_eq!(status, 404, "{method} {path}: {e}");
    }
    let (_, _, list) = send(&s, reqwest::Method::GET, "/v1/admin/keys", b, None, &[]).await;
    assert!(list["data"].as_array().unwrap().iter().all(|x| x["id"] != id), "{list}");
    let (_, _, list) = send(&s, reqwest::Method::GET, &format!("/v1/admin/keys?after={id}"), b, None, &[]).await;
    assert_eq!(list["data"], json!([]), "another tenant's cursor reveals nothing");
    let (_, _, audit) = send(&s, reqwest::Method::GET, "/v1/admin/audit", b, None, &[]).await;
    assert!(audit["data"].as_array().unwrap().iter().all(|r| r["tenant"] == "tenant-b"), "{audit}");
    // The key still works for its own tenant: nothing of tenant B's attempts changed it.
    assert_eq!(chat_status(&s, secret).await, 200);
    // An EU key is unknown to the US region, and the US region refuses the EU tenant.
    let us = s.us.as_ref().unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()));
    let r = s.http.post(format!("{}/internal/keys/resolve", us.url)).header("x-meridian-internal", INTERNAL_SECRET).json(&json!({"sha256": digest})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = s.http.get(format!("{}/v1/admin/keys", us.url)).bearer_auth(secret).send().await.unwrap();
    assert_eq!(r.status(), 403, "the US region does not serve an EU key");
}

#[tokio::test]
async fn stale_writes_are_refused_and_changes_take_effect() {
    let (s, _data) = stack().await;
    let (_, h, k) = create(&s, &s.key_admin, json!({"name": "v"})).await;
    let id = k["id"].as_str().unwrap();
    let etag = header(&h, "etag").to_string();
    let path = format!("/v1/admin/keys/{id}");
    let (status, _, e) = send(&s, reqwest::Method::PATCH, &path, &s.key_admin, Some(json!({"roles": ["chat-small"]})), &[]).await;
    assert_eq!(status, 428, "If-Match is required: {e}");
    let (status, h2, k2) = send(&s, reqwest::Method::PATCH, &path, &s.key_admin, Some(json!({"roles": ["chat-small"]})), &[("if-match", &etag)]).await;
    assert_eq!(status, 200, "{k2}");
    assert_eq!(k2["roles"], json!(["chat-small"]));
    assert_ne!(header(&h2, "etag"), etag);
    let (status, _, e) = send(&s, reqwest::Method::PATCH, &path, &s.key_admin, Some(json!({"name": "lost-update"})), &[("if-match", &etag)]).await;
    assert_eq!(status, 412, "a stale write: {e}");
    let (_, _, now) = send(&s, reqwest::Method::GET, &path, &s.key_admin, None, &[]).await;
    assert_eq!(now["name"], "v", "the stale write changed nothing");
    // Bad input names the field and changes nothing.
    let (status, _, e) = send(&s, reqwest::Method::PATCH, &path, &s.key_admin, Some(json!({"roles": ["ghost"]})), &[("if-match", "*")]).await;
    assert_eq!((status, e["error"]["param"].as_str()), (400, Some("roles[0]")));
    // A config key cannot be changed here.
    let (_, _, list) = send(&s, reqwest::Method::GET, "/v1/admin/keys?limit=100", &s.key_admin, None, &[]).await;
    let config_key = list["data"].as_array().unwrap().iter().find(|k| k["source"] == "config").unwrap()["id"].as_str().unwrap().to_string();
    let (status, _, _) = send(&s, reqwest::Method::DELETE, &format!("/v1/admin/keys/{config_key}"), &s.key_admin, None, &[]).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn creates_are_idempotent_and_checked_whole() {
    let (s, _data) = stack().await;
    let body = json!({"name": "idem", "expires_in_s": 3600});
    let (status, _, first) = send(&s, reqwest::Method::POST, "/v1/admin/keys", &s.key_admin, Some(body.clone()), &[("idempotency-key", "req-1")]).await;
    assert_eq!(status, 201);
    let (status, h, again) = send(&s, reqwest::Method::POST, "/v1/admin/keys", &s.key_admin, Some(body), &[("idempotency-key", "req-1")]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "idempotent-replayed"), "true");
    assert_eq!(again["id"], first["id"]);
    assert!(again["secret"].is_null(), "the secret is shown once");
    let (status, _, _) = send(&s, reqwest::Method::POST, "/v1/admin/keys", &s.key_admin, Some(json!({"name": "other"})), &[("idempotency-key", "req-1")]).await;
    assert_eq!(status, 409);
    for (bad, param) in [(json!({"name": "has space"}), "name"), (json!({"name": "r", "roles": ["ghost"]}), "roles[0]"), (json!({"name": "e", "expires_in_s": 999_999_999_999u64}), "expires_in_s")] {
        let (status, _, e) = create(&s, &s.key_admin, bad.clone()).await;
        assert_eq!((status, e["error"]["param"].as_str()), (400, Some(param)), "{bad}: {e}");
    }
    let (status, _, e) = create(&s, &s.key_admin, json!({"name": "x", "secret": "chosen"})).await;
    assert_eq!(status, 400, "unknown field: {e}");
    let (status, _, e) = create(&s, &s.key_admin, json!({"name": "idem"})).await;
    assert_eq!(status, 409, "duplicate name: {e}");
    let (_, _, list) = send(&s, reqwest::Method::GET, "/v1/admin/keys?limit=100", &s.key_admin, None, &[]).await;
    let admin_keys: Vec<_> = list["data"].as_array().unwrap().iter().filter(|k| k["source"] == "admin").collect();
    assert_eq!(admin_keys.len(), 1, "nothing half-written: {list}");
    assert!(admin_keys[0]["expires_at"].as_i64().unwrap() > admin_keys[0]["created_at"].as_i64().unwrap() + 3500);
    // Pagination: newest first, a cursor to the next page.
    for i in 0..3 {
        create(&s, &s.key_admin, json!({"name": format!("p{i}")})).await;
    }
    let (_, _, p1) = send(&s, reqwest::Method::GET, "/v1/admin/keys?limit=2", &s.key_admin, None, &[]).await;
    assert_eq!(p1["data"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect::<Vec<_>>(), vec!["p2", "p1"]);
    assert_eq!(p1["has_more"], true);
    let (_, _, p2) = send(&s, reqwest::Method::GET, &format!("/v1/admin/keys?limit=2&after={}", p1["next_cursor"].as_str().unwrap()), &s.key_admin, None, &[]).await;
    assert_eq!(p2["data"][0]["name"], "p0");
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_only_for_its_overlap() {
    let (s, _data) = stack().await;
    let (_, _, k) = create(&s, &s.key_admin, json!({"name": "rot"})).await;
    let (id, old) = (k["id"].as_str().unwrap().to_string(), k["secret"].as_str().unwrap().to_string());
    let (status, _, r) = send(&s, reqwest::Method::POST, &format!("/v1/admin/keys/{id}/rotate"), &s.key_admin, Some(json!({"overlap_s": 3600})), &[]).await;
    assert_eq!(status, 200, "{r}");
    let new = r["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(r["id"], k["id"], "the same key, a new secret");
    assert_eq!((chat_status(&s, &new).await, chat_status(&s, &old).await), (200, 200), "both work during the overlap");
    let (_, _, r) = send(&s, reqwest::Method::POST, &format!("/v1/admin/keys/{id}/rotate"), &s.key_admin, Some(json!({"overlap_s": 0})), &[]).await;
    let newest = r["secret"].as_str().unwrap().to_string();
    assert_eq!(chat_status(&s, &newest).await, 200);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(chat_status(&s, &new).await, 401, "no overlap: the previous secret stops (once the edge's cache expired)");
    assert_eq!(chat_status(&s, &old).await, 200, "the first secret's overlap still runs");
}

#[tokio::test]
async fn the_audit_chain_verifies_cannot_be_edited_by_the_app_and_shows_tampering() {
    let (s, data) = stack().await;
    let (_, _, k) = create(&s, &s.key_admin, json!({"name": "audited"})).await;
    let id = k["id"].as_str().unwrap();
    send(&s, reqwest::Method::PATCH, &format!("/v1/admin/keys/{id}"), &s.key_admin, Some(json!({"name": "audited-2"})), &[("if-match", "*")]).await;
    send(&s, reqwest::Method::DELETE, &format!("/v1/admin/keys/{id}"), &s.key_admin, None, &[]).await;
    let (_, _, audit) = send(&s, reqwest::Method::GET, "/v1/admin/audit", &s.key_viewer, None, &[]).await;
    let actions: Vec<_> = audit["data"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["key.revoke", "key.update", "key.create"]);
    assert!(audit["data"].as_array().unwrap().iter().all(|r| r["actor"] == "key:admin" && r["object_id"] == id));
    let verify = || {
        let out = std::process::Command::new(bin("meridian-regional")).args(["audit", "verify", "--config"]).arg(&s.eu_config).envs(s.eu_env.iter().map(|(k, v)| (k, v))).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, out) = verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("tenant-eu: ok (3 records)"), "{out}");
    // The application's own role cannot change or remove a record.
    let app = sqlx::PgPool::connect(&data.database_url).await.unwrap();
    for stmt in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let mut tx = app.begin().await.unwrap();
        sqlx::query("SELECT set_config('meridian.tenant', 'tenant-eu', true)").execute(&mut *tx).await.unwrap();
        let e = sqlx::query(stmt).execute(&mut *tx).await.expect_err(stmt);
        assert!(e.to_string().contains("permission denied") || e.to_string().contains("append-only"), "{stmt}: {e}");
    }
    // Someone with the database's superuser rewrites one record: verify finds it.
    let su = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{}/meridian", data.pg.port)).await.unwrap();
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only").execute(&su).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'key:someone-else' WHERE tenant_id = 'tenant-eu' AND seq = 2").execute(&su).await.unwrap();
    let (code, out) = verify();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("tenant-eu: BROKEN at record 2"), "{out}");
    // Removing the last record is found against the chain's head.
    sqlx::query("UPDATE audit_log SET actor = 'key:admin' WHERE tenant_id = 'tenant-eu' AND seq = 2").execute(&su).await.unwrap();
    sqlx::query("DELETE FROM audit_log WHERE tenant_id = 'tenant-eu' AND seq = 3").execute(&su).await.unwrap();
    let (code, out) = verify();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("BROKEN at record 3"), "{out}");
}

#[tokio::test]
async fn a_random_key_flood_costs_the_region_one_lookup_per_key_per_period_and_an_outage_is_503() {
    let (mut s, _data) = stack().await;
    let keys: Vec<String> = (0..30).map(|i| format!("mk-eu-{:032}", i)).collect();
    for _ in 0..3 {
        for k in &keys {
            assert_eq!(chat_status(&s, k).await, 401);
        }
    }
    let metrics = s.http.get(format!("{}/metrics", s.eu.url)).send().await.unwrap().text().await.unwrap();
    let asked = metrics.lines().find(|l| l.starts_with("meridian_requests_total{route=\"/internal/keys/resolve\",status=\"404\"}")).and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse::<u64>().ok());
    assert_eq!(asked, Some(30), "90 requests with 30 random keys, within the cache period: one lookup per key\n{metrics}");
    // A real key, resolved once, keeps working while the region is down, up to the bound;
    // a key never seen is a 503 (an outage), not a 401 (a bad key).
    let (_, _, k) = create(&s, &s.key_admin, json!({"name": "outage"})).await;
    let secret = k["secret"].as_str().unwrap().to_string();
    assert_eq!(chat_status(&s, &secret).await, 200);
    s.eu.terminate();
    assert!(s.eu.exited_within(Duration::from_secs(10)));
    assert_eq!(chat_status(&s, &secret).await, 200, "cached: the edge still serves it");
    let r = s.chat("mk-eu-NeverSeenNeverSeenNeverSeen00000", json!({"model": "m", "messages": user("hi")})).await;
    assert_eq!(r.status(), 503, "an outage is not a bad key");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(chat_status(&s, &secret).await, 503, "past the bound the edge no longer vouches for it");
}

async fn graphql(s: &EdgeStack, key: &str, query: &str, variables: Value) -> (u16, Value) {
    let (status, _, v) = send(s, reqwest::Method::POST, "/v1/graphql", key, Some(json!({"query": query, "variables": variables})), &[]).await;
    (status, v)
}

#[tokio::test]
async fn graphql_is_the_same_api_with_the_same_rules() {
    let (s, _data) = stack().await;
    let (status, v) = graphql(&s, &s.key_admin, "mutation($n: String!) { createKey(input: {name: $n, roles: [\"admin\"]}) { secret key { id name version } } }", json!({"n": "gql"})).await;
    assert_eq!(status, 200, "{v}");
    let secret = v["data"]["createKey"]["secret"].as_str().unwrap().to_string();
    let id = v["data"]["createKey"]["key"]["id"].as_str().unwrap().to_string();
    assert_eq!(chat_status(&s, &secret).await, 200, "a key issued over GraphQL works at the edge");
    // The same objects as REST.
    let (_, _, rest) = send(&s, reqwest::Method::GET, &format!("/v1/admin/keys/{id}"), &s.key_admin, None, &[]).await;
    assert_eq!(rest["name"], "gql");
    let (_, v) = graphql(&s, &s.key_viewer, "{ keys(first: 50) { nodes { id name source } hasMore } audit { action objectId } usage(groupBy: MODEL) { key requests } }", json!({})).await;
    assert!(v["errors"].is_null(), "{v}");
    assert!(v["data"]["keys"]["nodes"].as_array().unwrap().iter().any(|k| k["id"] == id.as_str()));
    assert_eq!(v["data"]["audit"][0]["action"], "key.create");
    // Viewers cannot mutate; stale versions are refused; errors say why.
    let (_, v) = graphql(&s, &s.key_viewer, "mutation($id: ID!) { revokeKey(id: $id) { id } }", json!({"id": id})).await;
    assert_eq!(v["errors"][0]["extensions"]["status"], 403, "{v}");
    let (_, v) = graphql(&s, &s.key_admin, "mutation($id: ID!) { updateKey(id: $id, ifMatch: 99, input: {name: \"x\"}) { id } }", json!({"id": id})).await;
    assert_eq!(v["errors"][0]["extensions"]["status"], 412, "{v}");
    let (_, v) = graphql(&s, &s.key_admin, "mutation { createKey(input: {name: \"bad name\"}) { secret } }", json!({})).await;
    assert_eq!(v["errors"][0]["extensions"]["param"], "name", "{v}");
    // Another tenant sees nothing of it.
    let (_, v) = graphql(&s, &s.key_b_admin, "query($id: ID!) { key(id: $id) { id } keys { nodes { id } } }", json!({"id": id})).await;
    assert!(v["data"]["key"].is_null(), "{v}");
    assert!(v["data"]["keys"]["nodes"].as_array().unwrap().iter().all(|k| k["id"] != id.as_str()));
    let (_, v) = graphql(&s, &s.key_b_admin, "mutation($id: ID!) { revokeKey(id: $id) { id } }", json!({"id": id})).await;
    assert_eq!(v["errors"][0]["extensions"]["status"], 404, "{v}");
    // Expensive or probing queries are refused.
    let aliases: String = (0..21).map(|i| format!("a{i}: keys {{ hasMore }} ")).collect();
    let (status, v) = graphql(&s, &s.key_admin, &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(status, 400, "21 aliases: {v}");
    let complex: String = (0..15).map(|i| format!("c{i}: keys {{ nodes {{ id name prefix roles source createdAt createdBy expiresAt revokedAt version }} hasMore nextCursor }} ")).collect();
    let (_, v) = graphql(&s, &s.key_admin, &format!("{{ {complex} }}"), json!({})).await;
    assert!(v["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("complex"), "{v}");
    let deep = format!("{{ keys {{ nodes {}{} }} }}", "{ a ".repeat(9), "}".repeat(9));
    let (_, v) = graphql(&s, &s.key_admin, &deep, json!({})).await;
    assert!(v["errors"].as_array().is_some_and(|e| !e.is_empty()) && v["data"].is_null(), "{v}");
    let (_, v) = graphql(&s, &s.key_admin, "{ __schema { types { name } } }", json!({})).await;
    assert!(v["data"]["__schema"].is_null(), "introspection is off: nothing of the schema is revealed: {v}");
    let (_, v) = graphql(&s, &s.key_admin, "{ keys { nope } }", json!({})).await;
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("nope"), "the error names the field: {v}");
    let (status, _, _) = send(&s, reqwest::Method::POST, "/v1/graphql", &s.key_admin, Some(json!([{"query": "{ keys { hasMore } }"}])), &[]).await;
    assert_eq!(status, 400, "no batches");
    let (status, _, _) = send(&s, reqwest::Method::POST, "/v1/graphql", &s.key_chat_only, Some(json!({"query": "{ keys { hasMore } }"})), &[]).await;
    assert_eq!(status, 403, "a chat-only role may not use admin routes");
}
