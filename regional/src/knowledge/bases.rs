//! `POST /v1/knowledge-bases` and `GET /v1/knowledge-bases`.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_regional::rag::ingest::known_language;
use meridian_shared::api::GatewayError;
use serde::Deserialize;
use serde_json::json;
use sqlx::types::Uuid;

use super::{context, errors, Caller};
use crate::gateway::error::ApiError;
use crate::gateway::request;
use crate::state::SharedState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBase {
    name: String,
    /// Postgres text-search configuration for keyword search (`english`, `german`, ...).
    #[serde(default = "english")]
    language: String,
}

fn english() -> String {
    "english".into()
}

pub async fn create(State(st): State<SharedState>, who: Option<Caller>, body: Body) -> Response {
    run_create(st, who, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn run_create(st: SharedState, who: Option<Caller>, body: Body) -> Result<Response, ApiError> {
    let (p, dp) = context(&st, who)?;
    let body = request::read_body(body, 64 * 1024).await?;
    let nb: NewBase = request::parse_json(&body)?;
    if nb.name.trim().is_empty() || nb.name.len() > 200 {
        return Err(GatewayError::invalid_param("name must be 1 to 200 characters", "name").into());
    }
    let id = Uuid::new_v4();
    let mut tx = dp.db.tenant_tx(&p.tenant).await.map_err(errors::sql)?;
    if !known_language(&mut tx, &nb.language).await.map_err(errors::sql)? {
        return Err(GatewayError::invalid_param(format!("unknown text-search language {:?}", nb.language), "language").into());
    }
    sqlx::query("INSERT INTO knowledge_bases (id, tenant_id, name, language) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(&p.tenant)
        .bind(nb.name.trim())
        .bind(&nb.language)
        .execute(&mut *tx)
        .await
        .map_err(errors::sql)?;
    tx.commit().await.map_err(errors::sql)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "object": "knowledge_base", "name": nb.name.trim(), "language": nb.language}))).into_response())
}

pub async fn list(State(st): State<SharedState>, who: Option<Caller>) -> Response {
    let run = async {
        let (p, dp) = context(&st, who)?;
        let mut tx = dp.db.tenant_tx(&p.tenant).await.map_err(errors::sql)?;
        let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
            "SELECT kb.id, kb.name, kb.language, (SELECT count(*) FROM documents d WHERE d.kb_id = kb.id) FROM knowledge_bases kb ORDER BY kb.created_at, kb.id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(errors::sql)?;
        let data: Vec<_> = rows.into_iter().map(|(id, name, language, docs)| json!({"id": id, "object": "knowledge_base", "name": name, "language": language, "documents": docs})).collect();
        Ok::<_, ApiError>(Json(json!({"object": "list", "data": data})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
