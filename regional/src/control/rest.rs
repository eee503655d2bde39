//! The admin REST API for keys and the audit log, over [`super::keys::KeyStore`]:
//!
//! ```text
//! POST   /v1/admin/keys                 issue (201, the secret once; Idempotency-Key)
//! GET    /v1/admin/keys?limit&after     list, newest first, cursor pagination
//! GET    /v1/admin/keys/{id}            one key, with its ETag
//! PATCH  /v1/admin/keys/{id}            change name, roles, expiry (If-Match required)
//! DELETE /v1/admin/keys/{id}            revoke (If-Match optional)
//! POST   /v1/admin/keys/{id}/rotate     a new secret, the old one valid for the overlap
//! GET    /v1/admin/audit?limit&before   the tenant's audit records, newest first
//! ```
//!
//! Reading needs a role that allows admin routes (or none at all); changing needs the
//! `tenant-admin` role. A caller sees and changes only its own tenant's objects (the
//! store runs in the caller's tenant transaction: row-level security).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{admin_access, role_exists, AdminAccess, TENANT_ADMIN, TENANT_VIEWER};
use meridian_shared::control::keys::{CreateKey, KeyView, RotateKey, UpdateKey, DEFAULT_PAGE, MAX_PAGE};
use serde::Deserialize;
use serde_json::json;

use super::audit;
use super::keys::{Actor, Issued, KeyStore};
use crate::data_plane::DataPlane;
use crate::http::body;
use crate::http::caller::Caller;
use crate::http::error::ApiError;
use crate::state::SharedState;

/// Largest admin request body.
const MAX_BODY: usize = 16 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 200;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The data plane, if the caller may `need` admin objects.
fn allowed<'a>(st: &'a SharedState, c: &Caller, need: AdminAccess) -> Result<&'a DataPlane, ApiError> {
    let have = admin_access(c.0.roles.as_deref(), &st.config.roles);
    if have < need {
        let what = if need == AdminAccess::Write { "change" } else { "read" };
        return Err(GatewayError::Forbidden(format!("this caller may not {what} the tenant's admin objects (that needs the {TENANT_ADMIN} role{})", if need == AdminAccess::Read { format!(" or {TENANT_VIEWER}") } else { String::new() })).into());
    }
    st.data.as_deref().ok_or_else(|| GatewayError::Unavailable("this region has no data plane configured".into()).into())
}

fn store<'a>(st: &SharedState, dp: &'a DataPlane) -> KeyStore<'a> {
    KeyStore { db: &dp.db, region: st.config.server.region }
}

fn actor(c: &Caller, headers: &HeaderMap) -> Actor {
    Actor { tenant: c.0.tenant.clone(), name: format!("key:{}", c.0.key_name), request_id: header(headers, "x-request-id").map(str::to_string) }
}

fn known_role(st: &SharedState) -> impl Fn(&str) -> bool + '_ {
    move |r: &str| role_exists(&st.config.roles, r)
}

fn with_etag(status: StatusCode, k: &KeyView, body: serde_json::Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&k.etag()) {
        r.headers_mut().insert("etag", v);
    }
    r
}

/// A key with its ETag, or the error.
fn key_response(result: Result<KeyView, ApiError>) -> Response {
    match result {
        Ok(k) => with_etag(StatusCode::OK, &k, serde_json::to_value(&k).unwrap_or_default()),
        Err(e) => e.into_response(),
    }
}

fn issued(i: Issued, created: StatusCode) -> Response {
    let mut body = serde_json::to_value(&i.key).unwrap_or_default();
    body["secret"] = json!(i.secret);
    let mut r = with_etag(if i.replayed { StatusCode::OK } else { created }, &i.key, body);
    if i.replayed {
        r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

fn random() -> [u8; 32] {
    rand::random()
}

async fn json_body<T: serde::de::DeserializeOwned>(req: Request) -> Result<T, ApiError> {
    let bytes = body::read_body(req.into_body(), MAX_BODY).await?;
    Ok(body::parse_json(&bytes)?)
}

pub async fn create(State(st): State<SharedState>, c: Caller, headers: HeaderMap, req: Request) -> Response {
    let result = async {
        let dp = allowed(&st, &c, AdminAccess::Write)?;
        let idem = header(&headers, "idempotency-key");
        if idem.is_some_and(|k| k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY) {
            return Err(GatewayError::invalid_param(format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"), "Idempotency-Key").into());
        }
        let create: CreateKey = json_body(req).await?;
        create.validate(&known_role(&st))?;
        Ok::<_, ApiError>(store(&st, dp).create(&actor(&c, &headers), &create, idem, random()).await?)
    }
    .await;
    match result {
        Ok(i) => issued(i, StatusCode::CREATED),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<usize>,
    after: Option<String>,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| GatewayError::invalid(format!("query string: {}", e.body_text())).into())
}

pub async fn list(State(st): State<SharedState>, c: Caller, q: Result<Query<Page>, QueryRejection>) -> Response {
    let result = async {
        let dp = allowed(&st, &c, AdminAccess::Read)?;
        let q = query(q)?;
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(GatewayError::invalid_param(format!("`limit` must be 1 to {MAX_PAGE}"), "limit").into());
        }
        Ok::<_, ApiError>(store(&st, dp).list(&c.0.tenant, q.after.as_deref(), limit).await?)
    }
    .await;
    match result {
        Ok((keys, more)) => {
            let next = if more { keys.last().map(|k| k.id.clone()) } else { None };
            Json(json!({"object": "list", "data": keys, "has_more": more, "next_cursor": next})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn get(State(st): State<SharedState>, c: Caller, Path(id): Path<String>) -> Response {
    let result = async {
        let dp = allowed(&st, &c, AdminAccess::Read)?;
        Ok::<_, ApiError>(store(&st, dp).get(&c.0.tenant, &id).await?)
    }
    .await;
    key_response(result)
}

pub async fn update(State(st): State<SharedState>, c: Caller, Path(id): Path<String>, headers: HeaderMap, req: Request) -> Response {
    let result = async {
        let dp = allowed(&st, &c, AdminAccess::Write)?;
        let patch: UpdateKey = json_body(req).await?;
        patch.validate(&known_role(&st))?;
        let k = store(&st, dp).update(&actor(&c, &headers), &id, &patch, header(&headers, "if-match")).await?;
        st.resolver.forget();
        Ok::<_, ApiError>(k)
    }
    .await;
    key_response(result)
}

pub async fn revoke(State(st): State<SharedState>, c: Caller, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let result = async {
        let dp = allowed(&st, &c, AdminAccess::Write)?;
        let k = store(&st, dp).revoke(&actor(&c, &headers), &id, header(&headers, "if-match")).await?;
        st.resolver.forget();
        Ok::<_, ApiError>(k)
    }
    .await;
    key_response(result)
}

pub async fn rotate(State(st): State<SharedState>, c: Caller, Path(id): Path<String>, headers: HeaderMap, req: Request) -> Response {
    let result = async {
        let dp = allowed(&st, &c, AdminAccess::Write)?;
        let bytes = body::read_body(req.into_body(), MAX_BODY).await?;
        let rotate: RotateKey = if bytes.iter().all(u8::is_ascii_whitespace) { RotateKey::default() } else { body::parse_json(&bytes)? };
        let i = store(&st, dp).rotate(&actor(&c, &headers), &id, &rotate, header(&headers, "if-match"), random()).await?;
        st.resolver.forget();
        Ok::<_, ApiError>(i)
    }
    .await;
    match result {
        Ok(i) => issued(i, StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPage {
    limit: Option<i64>,
    before: Option<i64>,
}

pub async fn audit(State(st): State<SharedState>, c: Caller, q: Result<Query<AuditPage>, QueryRejection>) -> Response {
    let result = async {
        let dp = allowed(&st, &c, AdminAccess::Read)?;
        let q = query(q)?;
        let limit = q.limit.unwrap_or(DEFAULT_PAGE as i64);
        if !(1..=MAX_PAGE as i64).contains(&limit) {
            return Err(GatewayError::invalid_param(format!("`limit` must be 1 to {MAX_PAGE}"), "limit").into());
        }
        audit::page(&dp.db, &c.0.tenant, q.before, limit).await.map_err(|e| {
            tracing::error!(error = %e, "audit read failed");
            ApiError::from(GatewayError::Unavailable("the audit log is unavailable; try again".into()))
        })
    }
    .await;
    match result {
        Ok(records) => {
            let next = records.last().map(|r| r.seq).filter(|s| *s > 1);
            Json(json!({"object": "list", "data": records, "next_before": next})).into_response()
        }
        Err(e) => e.into_response(),
    }
}
