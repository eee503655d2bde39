//! Documents of a knowledge base: upload (`POST .../documents`, the file as the raw body
//! with its Content-Type, or as the `file` field of multipart/form-data), list and delete.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use crate::objects::ObjectStore;
use crate::rag::ingest::NewDocument;
use meridian_shared::api::GatewayError;
use serde::Deserialize;
use serde_json::json;
use sqlx::types::Uuid;

use super::{context, errors, parse_id, Caller};
use crate::http::error::ApiError;
use crate::http::body;
use crate::state::SharedState;
use axum::body::Bytes;

/// Room for multipart boundaries and headers on top of the document limit.
const MULTIPART_SLACK: usize = 64 * 1024;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    title: Option<String>,
    language: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: Uuid,
    title: String,
    media_type: String,
    bytes: i64,
    language: String,
    source_url: Option<String>,
    chunk_count: i32,
}

struct Upload {
    bytes: Bytes,
    media_type: Option<String>,
    file_name: Option<String>,
    title: Option<String>,
    language: Option<String>,
}

async fn read_multipart(body: Bytes, boundary: String) -> Result<Upload, GatewayError> {
    let mut up = Upload { bytes: Bytes::new(), media_type: None, file_name: None, title: None, language: None };
    let mut have_file = false;
    let text = |b: Bytes| String::from_utf8(b.to_vec()).map_err(|_| GatewayError::invalid("form fields must be UTF-8"));
    for part in body::multipart_parts(body, boundary).await? {
        match part.name.as_str() {
            "file" => {
                up.file_name = part.file_name;
                up.media_type = part.content_type;
                up.bytes = part.bytes;
                have_file = true;
            }
            "title" => up.title = Some(text(part.bytes)?),
            "language" => up.language = Some(text(part.bytes)?),
            other => return Err(GatewayError::invalid_param(format!("unknown form field {other:?}: send file, title, language"), other.to_string())),
        }
    }
    if !have_file {
        return Err(GatewayError::invalid_param("multipart upload without a `file` field", "file"));
    }
    Ok(up)
}

pub async fn upload(State(st): State<SharedState>, Path(kb): Path<String>, who: Option<Caller>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    run_upload(st, kb, who, uri, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn run_upload(st: SharedState, kb: String, who: Option<Caller>, uri: Uri, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let (p, dp) = context(&st, who)?;
    let Query(q) = Query::<UploadParams>::try_from_uri(&uri).map_err(|e| GatewayError::invalid(format!("query string: {}", e.body_text())))?;
    let kb_id = parse_id("knowledge base", &kb)?;
    let limit = dp.settings.ingest.max_document_bytes;
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let boundary = content_type.as_deref().and_then(|c| multer::parse_boundary(c).ok());
    let body = body::read_body(body, limit + if boundary.is_some() { MULTIPART_SLACK } else { 0 }).await.map_err(|e| match e {
        GatewayError::PayloadTooLarge { .. } => GatewayError::PayloadTooLarge { limit },
        other => other,
    })?;
    let up = match boundary {
        Some(b) => read_multipart(body, b).await?,
        None => Upload { bytes: body, media_type: content_type, file_name: None, title: None, language: None },
    };
    let title = q.title.or(up.title).or(up.file_name.clone()).unwrap_or_else(|| "untitled".into());
    let doc = NewDocument { kb_id, title, media_type: up.media_type, file_name: up.file_name, source_url: None, language: q.language.or(up.language), bytes: up.bytes.to_vec() };
    let started = std::time::Instant::now();
    let done = dp.ingestor().ingest(&p.tenant, doc).await.map_err(errors::ingest)?;
    metrics::counter!("meridian_ingest_chunks_total").increment(done.chunks as u64);
    metrics::histogram!("meridian_ingest_seconds").record(started.elapsed().as_secs_f64());
    tracing::info!(document = %done.id, chunks = done.chunks, ms = started.elapsed().as_millis() as u64, "document ingested");
    Ok((StatusCode::CREATED, Json(json!({"object": "document", "document": done}))).into_response())
}

pub async fn list(State(st): State<SharedState>, Path(kb): Path<String>, who: Option<Caller>) -> Response {
    let run = async {
        let (p, dp) = context(&st, who)?;
        let kb_id = parse_id("knowledge base", &kb)?;
        let mut tx = dp.db.tenant_tx(&p.tenant).await.map_err(errors::sql)?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM knowledge_bases WHERE id = $1)").bind(kb_id).fetch_one(&mut *tx).await.map_err(errors::sql)?;
        if !exists {
            return Err(GatewayError::ResourceNotFound(format!("knowledge base {kb_id} does not exist")).into());
        }
        let rows: Vec<DocumentRow> = sqlx::query_as("SELECT id, title, media_type, bytes, language, source_url, chunk_count FROM documents WHERE kb_id = $1 ORDER BY created_at, id")
            .bind(kb_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(errors::sql)?;
        let data: Vec<_> = rows
            .into_iter()
            .map(|d| json!({"id": d.id, "object": "document", "title": d.title, "media_type": d.media_type, "bytes": d.bytes, "language": d.language, "source_url": d.source_url, "chunks": d.chunk_count}))
            .collect();
        Ok::<_, ApiError>(Json(json!({"object": "list", "data": data})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Deletes the document's rows (its chunks cascade) and then its stored original.
pub async fn delete(State(st): State<SharedState>, Path((kb, doc)): Path<(String, String)>, who: Option<Caller>) -> Response {
    let run = async {
        let (p, dp) = context(&st, who)?;
        let (kb_id, doc_id) = (parse_id("knowledge base", &kb)?, parse_id("document", &doc)?);
        let mut tx = dp.db.tenant_tx(&p.tenant).await.map_err(errors::sql)?;
        crate::rag::keywords::unindex_document(&mut tx, doc_id).await.map_err(errors::sql)?;
        let key: Option<String> =
            sqlx::query_scalar("DELETE FROM documents WHERE id = $1 AND kb_id = $2 RETURNING object_key").bind(doc_id).bind(kb_id).fetch_optional(&mut *tx).await.map_err(errors::sql)?;
        let Some(key) = key else {
            return Err(GatewayError::ResourceNotFound(format!("document {doc_id} does not exist in knowledge base {kb_id}")).into());
        };
        tx.commit().await.map_err(errors::sql)?;
        remove_object(&dp.objects, &key).await;
        Ok::<_, ApiError>(Json(json!({"id": doc_id, "object": "document", "deleted": true})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn remove_object(objects: &ObjectStore, key: &str) {
    if let Err(e) = objects.delete(key).await {
        tracing::warn!(error = %e, object = key, "document deleted but its stored original could not be removed");
    }
}
