//! `POST /v1/knowledge-bases` and `GET /v1/knowledge-bases`.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use crate::rag::ingest::known_language;
use meridian_shared::api::GatewayError;
use meridian_shared::config::{EmbeddingModel, TenantConfig};
use serde::Deserialize;
use serde_json::json;
use sqlx::types::Uuid;

use super::{context, errors, Caller};
use crate::http::error::ApiError;
use crate::http::body;
use crate::state::SharedState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBase {
    name: String,
    /// Postgres text-search configuration for keyword search (`english`, `german`, ...).
    #[serde(default = "english")]
    language: String,
    /// Overrides the model the tenant's languages pick (`all-minilm-l6-v2`,
    /// `multilingual-e5-small`); fixed for the life of the base.
    #[serde(default)]
    embedding_model: Option<EmbeddingModel>,
}

fn english() -> String {
    "english".into()
}

pub async fn create(State(st): State<SharedState>, who: Option<Caller>, body: Body) -> Response {
    run_create(st, who, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn run_create(st: SharedState, who: Option<Caller>, body: Body) -> Result<Response, ApiError> {
    let (p, dp) = context(&st, who)?;
    let body = body::read_body(body, 64 * 1024).await?;
    let nb: NewBase = body::parse_json(&body)?;
    if nb.name.trim().is_empty() || nb.name.len() > 200 {
        return Err(GatewayError::invalid_param("name must be 1 to 200 characters", "name").into());
    }
    let tenant_model = st.config.tenant(&p.tenant).map_or(EmbeddingModel::AllMiniLmL6V2, TenantConfig::embedding_model);
    let model = nb.embedding_model.unwrap_or(tenant_model);
    if dp.embedder.models().get(model).is_err() {
        return Err(GatewayError::invalid_param(format!("the embedding model {} is not loaded in this region", model.name()), "embedding_model").into());
    }
    let id = Uuid::new_v4();
    let mut tx = dp.db.tenant_tx(&p.tenant).await.map_err(errors::sql)?;
    if !known_language(&mut tx, &nb.language).await.map_err(errors::sql)? {
        return Err(GatewayError::invalid_param(format!("unknown text-search language {:?}", nb.language), "language").into());
    }
    sqlx::query("INSERT INTO knowledge_bases (id, tenant_id, name, language, embedding_model) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(&p.tenant)
        .bind(nb.name.trim())
        .bind(&nb.language)
        .bind(model.name())
        .execute(&mut *tx)
        .await
        .map_err(errors::sql)?;
    tx.commit().await.map_err(errors::sql)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "object": "knowledge_base", "name": nb.name.trim(), "language": nb.language, "embedding_model": model.name()}))).into_response())
}

pub async fn list(State(st): State<SharedState>, who: Option<Caller>) -> Response {
    let run = async {
        let (p, dp) = context(&st, who)?;
        let mut tx = dp.db.tenant_tx(&p.tenant).await.map_err(errors::sql)?;
        let rows: Vec<(Uuid, String, String, String, i64)> =
            sqlx::query_as("SELECT kb.id, kb.name, kb.language, kb.embedding_model, (SELECT count(*) FROM documents d WHERE d.kb_id = kb.id) FROM knowledge_bases kb ORDER BY kb.created_at, kb.id")
                .fetch_all(&mut *tx)
                .await
                .map_err(errors::sql)?;
        let data: Vec<_> = rows
            .into_iter()
            .map(|(id, name, language, model, docs)| json!({"id": id, "object": "knowledge_base", "name": name, "language": language, "embedding_model": model, "documents": docs}))
            .collect();
        Ok::<_, ApiError>(Json(json!({"object": "list", "data": data})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
