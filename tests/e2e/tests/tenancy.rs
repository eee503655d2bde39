//! Tenant isolation enforced by PostgreSQL itself (real PostgreSQL 15 + pgvector): a
//! query that forgets its tenant filter still returns only its own tenant's rows.

use meridian_e2e::Postgres;
use meridian_regional::db::Db;
use sqlx::Row;

async fn db() -> (Postgres, Db) {
    let pg = Postgres::start();
    let url = pg.app_database("meridian").await;
    let db = Db::connect(&url, 4).await.expect("connects as the application role");
    db.migrate().await.expect("migrations apply");
    db.migrate().await.expect("and are idempotent");
    (pg, db)
}

async fn add_kb(db: &Db, tenant: &str, name: &str) {
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    sqlx::query("INSERT INTO knowledge_bases (id, tenant_id, name) VALUES (gen_random_uuid(), $1, $2)").bind(tenant).bind(name).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn row_level_security_isolates_tenants_even_without_a_filter() {
    let (_pg, db) = db().await;
    for t in ["tenant-a", "tenant-b"] {
        db.create_tenant(t, "eu").await.unwrap();
    }
    add_kb(&db, "tenant-a", "a-docs").await;
    add_kb(&db, "tenant-a", "a-faq").await;
    add_kb(&db, "tenant-b", "b-secrets").await;

    // The application "forgets" the tenant filter: RLS still scopes the result.
    let mut tx = db.tenant_tx("tenant-a").await.unwrap();
    let names: Vec<String> = sqlx::query("SELECT name FROM knowledge_bases ORDER BY name").fetch_all(&mut *tx).await.unwrap().iter().map(|r| r.get("name")).collect();
    assert_eq!(names, vec!["a-docs", "a-faq"]);
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(tenants, 1, "a tenant sees only its own tenant row");
    // Asking for B's rows explicitly returns nothing.
    let b: i64 = sqlx::query_scalar("SELECT count(*) FROM knowledge_bases WHERE tenant_id = 'tenant-b'").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(b, 0);
    // Writing a row for B from A's transaction is refused by the policy.
    let err = sqlx::query("INSERT INTO knowledge_bases (id, tenant_id, name) VALUES (gen_random_uuid(), 'tenant-b', 'planted')").execute(&mut *tx).await.unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // Updating or deleting B's rows from A's transaction touches nothing.
    let mut tx = db.tenant_tx("tenant-a").await.unwrap();
    let n = sqlx::query("DELETE FROM knowledge_bases WHERE name = 'b-secrets'").execute(&mut *tx).await.unwrap().rows_affected();
    assert_eq!(n, 0);
    tx.commit().await.unwrap();

    // No tenant set: nothing is visible at all.
    let mut tx = db.untenanted_tx().await.unwrap();
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM knowledge_bases").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(all, 0);
    tx.rollback().await.unwrap();

    let mut tx = db.tenant_tx("tenant-b").await.unwrap();
    let names: Vec<String> = sqlx::query("SELECT name FROM knowledge_bases").fetch_all(&mut *tx).await.unwrap().iter().map(|r| r.get("name")).collect();
    assert_eq!(names, vec!["b-secrets"], "B's data survived A's delete");
}

#[tokio::test]
async fn pgvector_columns_and_indexes_exist() {
    let (_pg, db) = db().await;
    db.create_tenant("t", "eu").await.unwrap();
    add_kb(&db, "t", "kb").await;
    let mut tx = db.tenant_tx("t").await.unwrap();
    let kb: sqlx::types::Uuid = sqlx::query_scalar("SELECT id FROM knowledge_bases").fetch_one(&mut *tx).await.unwrap();
    let doc = sqlx::types::Uuid::from_u128(rand_u128());
    sqlx::query("INSERT INTO documents (id, tenant_id, kb_id, title, media_type, object_key, bytes) VALUES ($1, 't', $2, 'd', 'text/plain', 't/d', 1)")
        .bind(doc)
        .bind(kb)
        .execute(&mut *tx)
        .await
        .unwrap();
    let v = format!("[{}]", (0..384).map(|i| if i == 0 { "1" } else { "0" }).collect::<Vec<_>>().join(","));
    sqlx::query("INSERT INTO chunks (tenant_id, kb_id, document_id, position, text_enc, tsv, embedding) VALUES ('t', $3, $1, 0, '\\x00', to_tsvector('english', 'hello world'), $2::vector)")
        .bind(doc)
        .bind(&v)
        .bind(kb)
        .execute(&mut *tx)
        .await
        .unwrap();
    let d: f64 = sqlx::query_scalar("SELECT embedding <=> $1::vector FROM chunks").bind(&v).fetch_one(&mut *tx).await.unwrap();
    assert!(d.abs() < 1e-9, "cosine distance to itself is 0");
    let hits: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE tsv @@ to_tsquery('english', 'worlds')").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(hits, 1, "language-aware stemming");
}

fn rand_u128() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test]
async fn crypto_shredding_makes_a_tenants_data_unreadable() {
    use meridian_regional::crypto::Keyring;
    let (_pg, db) = db().await;
    let ring = Keyring::from_hex(&"ab".repeat(32)).unwrap();
    for t in ["tenant-a", "tenant-b"] {
        db.create_tenant(t, "eu").await.unwrap();
    }
    let a = db.data_key(&ring, "tenant-a").await.unwrap();
    let b = db.data_key(&ring, "tenant-b").await.unwrap();
    let sealed = a.seal(b"tenant-a/chunk-1", b"quarterly numbers");
    let again = db.data_key(&ring, "tenant-a").await.unwrap();
    assert_eq!(again.open(b"tenant-a/chunk-1", &sealed).unwrap(), b"quarterly numbers", "the stored key opens the data");
    assert!(b.open(b"tenant-a/chunk-1", &sealed).is_err(), "another tenant's key does not");
    // Tenant B cannot see A's wrapped key row.
    let mut tx = db.tenant_tx("tenant-b").await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_keys").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 1);
    tx.rollback().await.unwrap();
    // Shred A: the ciphertext can no longer be opened with whatever key A gets next.
    assert!(db.shred_tenant_key("tenant-a").await.unwrap());
    let fresh = db.data_key(&ring, "tenant-a").await.unwrap();
    assert!(fresh.open(b"tenant-a/chunk-1", &sealed).is_err(), "shredded");
    assert!(db.data_key(&ring, "tenant-b").await.unwrap().open(b"x", &b.seal(b"x", b"still fine")).is_ok(), "B is untouched");
}

#[tokio::test]
async fn concurrent_first_requests_of_a_tenant_agree_on_one_data_key() {
    let (_pg, db) = db().await;
    db.create_tenant("fresh", "eu").await.unwrap();
    let keyring = meridian_regional::crypto::Keyring::from_hex(&"cd".repeat(32)).unwrap();
    // Sixteen requests race to create the tenant's first key (found by the media
    // benchmark: one of them used to fail on the primary key).
    let keys = futures_util::future::join_all((0..16).map(|_| db.data_key(&keyring, "fresh"))).await;
    let keys: Vec<_> = keys.into_iter().map(|k| k.expect("every request gets the key")).collect();
    let sealed = keys[0].seal(b"ctx", b"secret");
    for k in &keys {
        assert_eq!(k.open(b"ctx", &sealed).unwrap(), b"secret", "one key for all");
    }
}
