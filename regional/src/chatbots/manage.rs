//! `POST /v1/chatbots`, `GET /v1/chatbots`, `GET /v1/chatbots/{id}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{roles_allow, RouteClass};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::types::Uuid;

use crate::http::error::ApiError;
use crate::http::body;
use crate::knowledge::{context, errors, parse_id, Caller};
use crate::state::SharedState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewChatbot {
    name: String,
    knowledge_base_id: Uuid,
    model: String,
    #[serde(default)]
    system_prompt: String,
}

/// A chatbot as stored: what the chat endpoint needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Chatbot {
    pub id: Uuid,
    pub kb_id: Uuid,
    pub name: String,
    pub model: String,
    pub system_prompt: String,
    /// Of its knowledge base: the text-search language and the embedding model.
    pub language: String,
    pub embedding_model: String,
}

pub fn to_json(c: &Chatbot) -> Value {
    json!({"id": c.id, "object": "chatbot", "name": c.name, "knowledge_base_id": c.kb_id, "model": c.model, "system_prompt": c.system_prompt})
}

/// Loads a chatbot of `tenant` (row-level security hides other tenants' chatbots).
pub async fn load(st: &SharedState, tenant: &str, id: Uuid) -> Result<Chatbot, ApiError> {
    let dp = st.data.as_deref().ok_or_else(|| GatewayError::Unavailable("this region has no data plane configured".into()))?;
    let mut tx = dp.db.tenant_tx(tenant).await.map_err(errors::sql)?;
    let bot: Option<Chatbot> =
        sqlx::query_as("SELECT c.id, c.kb_id, c.name, c.model, c.system_prompt, kb.language, kb.embedding_model FROM chatbots c JOIN knowledge_bases kb ON kb.id = c.kb_id WHERE c.id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(errors::sql)?;
    bot.ok_or_else(|| GatewayError::ResourceNotFound(format!("chatbot {id} does not exist")).into())
}

pub async fn create(State(st): State<SharedState>, who: Option<Caller>, body: Body) -> Response {
    let run = async {
        let (p, dp) = context(&st, who)?;
        let body = body::read_body(body, 64 * 1024).await?;
        let nb: NewChatbot = body::parse_json(&body)?;
        if nb.name.trim().is_empty() || nb.name.len() > 200 {
            return Err(GatewayError::invalid_param("name must be 1 to 200 characters", "name").into());
        }
        if nb.system_prompt.len() > 16 * 1024 {
            return Err(GatewayError::invalid_param("system_prompt is longer than 16 KiB", "system_prompt").into());
        }
        if !st.router.models.contains_key(&nb.model) {
            return Err(GatewayError::invalid_param(format!("the model {:?} does not exist", nb.model), "model").into());
        }
        if !p.may_use_model(&nb.model) || !roles_allow(p.roles.as_deref(), &st.config.roles, RouteClass::Chat, Some(&nb.model)) {
            return Err(GatewayError::Forbidden(format!("this API key may not use model {:?}", nb.model)).into());
        }
        let id = Uuid::new_v4();
        let mut tx = dp.db.tenant_tx(&p.tenant).await.map_err(errors::sql)?;
        let kb: Option<(String, String)> =
            sqlx::query_as("SELECT language, embedding_model FROM knowledge_bases WHERE id = $1").bind(nb.knowledge_base_id).fetch_optional(&mut *tx).await.map_err(errors::sql)?;
        let Some((language, embedding_model)) = kb else {
            return Err(GatewayError::invalid_param(format!("knowledge base {} does not exist", nb.knowledge_base_id), "knowledge_base_id").into());
        };
        sqlx::query("INSERT INTO chatbots (id, tenant_id, kb_id, name, model, system_prompt) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(&p.tenant)
            .bind(nb.knowledge_base_id)
            .bind(nb.name.trim())
            .bind(&nb.model)
            .bind(&nb.system_prompt)
            .execute(&mut *tx)
            .await
            .map_err(errors::sql)?;
        tx.commit().await.map_err(errors::sql)?;
        let bot = Chatbot { id, kb_id: nb.knowledge_base_id, name: nb.name.trim().to_string(), model: nb.model, system_prompt: nb.system_prompt, language, embedding_model };
        Ok::<_, ApiError>((StatusCode::CREATED, Json(to_json(&bot))).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn get(State(st): State<SharedState>, Path(id): Path<String>, who: Option<Caller>) -> Response {
    let run = async {
        let (p, _) = context(&st, who)?;
        let bot = load(&st, &p.tenant, parse_id("chatbot", &id)?).await?;
        Ok::<_, ApiError>(Json(to_json(&bot)).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn list(State(st): State<SharedState>, who: Option<Caller>) -> Response {
    let run = async {
        let (p, dp) = context(&st, who)?;
        let mut tx = dp.db.tenant_tx(&p.tenant).await.map_err(errors::sql)?;
        let bots: Vec<Chatbot> = sqlx::query_as(
            "SELECT c.id, c.kb_id, c.name, c.model, c.system_prompt, kb.language, kb.embedding_model FROM chatbots c JOIN knowledge_bases kb ON kb.id = c.kb_id ORDER BY c.created_at, c.id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(errors::sql)?;
        Ok::<_, ApiError>(Json(json!({"object": "list", "data": bots.iter().map(to_json).collect::<Vec<_>>()})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
