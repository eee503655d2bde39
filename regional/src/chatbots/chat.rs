//! `POST /v1/chatbots/{id}/chat`: an OpenAI chat request (the model is the chatbot's)
//! answered from the chatbot's knowledge base. The last user turn is retrieved against
//! the knowledge base (hybrid search); the best chunks become numbered sources in the
//! system message; the request then takes the ordinary gateway path. The answer carries
//! `citations` (document, chunk, scores): a top-level field of the JSON response, or of
//! a first `chat.completion.chunk` with no choices when streaming. With nothing relevant
//! retrieved, the chatbot says it does not know, and no model is called.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use crate::rag::answer::{grounded_messages, question, Citation, KnowledgeBase, DONT_KNOW};
use meridian_shared::api::{ChatRequest, GatewayError};
use meridian_shared::config::EmbeddingModel;
use serde_json::{json, Value};

use super::manage::load;
use crate::gateway::chat::serve;
use crate::http::error::ApiError;
use crate::gateway::headers::Trace;
use crate::http::body;
use crate::knowledge::{context, errors, parse_id, Caller};
use crate::state::SharedState;

pub async fn handle(State(st): State<SharedState>, Path(id): Path<String>, who: Option<Caller>, headers: HeaderMap, body: Body) -> Response {
    run(st, id, who, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn run(st: SharedState, id: String, who: Option<Caller>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let (p, dp) = context(&st, who)?;
    let bot = load(&st, &p.tenant, parse_id("chatbot", &id)?).await?;
    let trace = Trace::new().with_feature(&headers);
    let body = body::read_body(body, st.config.limits.max_body_bytes).await?;
    // The chatbot decides the model; a caller's `model` is replaced, not trusted.
    let mut raw: Value = serde_json::from_slice(&body).map_err(|e| GatewayError::invalid(format!("the body is not valid JSON: {e}")))?;
    let obj = raw.as_object_mut().ok_or_else(|| GatewayError::invalid("the body must be a JSON object"))?;
    obj.insert("model".into(), Value::String(bot.model.clone()));
    let mut chat: ChatRequest = body::parse_json(&serde_json::to_vec(&raw).expect("JSON re-serialises"))?;
    body::validate_chat(&mut chat, &st.config.limits)?;
    let q = question(&chat.messages).ok_or_else(|| GatewayError::invalid_param("the conversation has no user message to answer", "messages"))?;
    let model = EmbeddingModel::from_name(&bot.embedding_model).ok_or_else(|| GatewayError::Internal(format!("knowledge base {} has an unknown embedding model", bot.kb_id)))?;
    let kb = KnowledgeBase { id: bot.kb_id, language: &bot.language, model };
    let cites = dp.retriever().sources(&p.tenant, kb, &q).await.map_err(|e| ApiError::from(errors::internal(&e)))?;
    tracing::info!(chatbot = %bot.id, sources = cites.len(), best = cites.first().map(|c| c.similarity), "retrieved");
    if cites.is_empty() {
        return Ok(dont_know(&chat));
    }
    chat.messages = grounded_messages(&bot.system_prompt, &cites, &chat.messages);
    let resp = serve(st.clone(), p, chat, trace).await;
    Ok(with_citations(resp, &cites).await)
}

fn citations_json(c: &[Citation]) -> Value {
    serde_json::to_value(c).expect("citations serialise")
}

/// Adds the citations to a successful answer; errors pass through unchanged.
async fn with_citations(resp: Response, cites: &[Citation]) -> Response {
    if !resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts.headers.insert("x-meridian-citations", HeaderValue::from(cites.len()));
    if parts.headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/event-stream")) {
        let first = json!({"id": "citations", "object": "chat.completion.chunk", "created": 0, "model": "", "choices": [], "citations": citations_json(cites)});
        let prefix = Bytes::from(format!("data: {first}\n\n"));
        let stream = futures_util::stream::once(async move { Ok::<_, axum::Error>(prefix) }).chain(body.into_data_stream());
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return ApiError::from(GatewayError::Internal(format!("reading the answer: {e}"))).into_response(),
    };
    let mut v: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    v["citations"] = citations_json(cites);
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(serde_json::to_vec(&v).expect("answer re-serialises")))
}

/// The answer when retrieval found nothing relevant, in the shape the caller asked for.
fn dont_know(chat: &ChatRequest) -> Response {
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = crate::clock::unix_secs();
    let model = &chat.model;
    let mut resp = if chat.is_stream() {
        let chunk =
            |delta: Value, finish: Value| json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        let mut sse = String::new();
        for ev in [
            json!({"id": "citations", "object": "chat.completion.chunk", "created": 0, "model": "", "choices": [], "citations": []}),
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": DONT_KNOW}), Value::Null),
            chunk(json!({}), json!("stop")),
        ] {
            sse.push_str(&format!("data: {ev}\n\n"));
        }
        if chat.wants_stream_usage() {
            sse.push_str(&format!(
                "data: {}\n\n",
                json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})
            ));
        }
        sse.push_str("data: [DONE]\n\n");
        ([("content-type", "text/event-stream"), ("cache-control", "no-cache")], sse).into_response()
    } else {
        Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": DONT_KNOW}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "citations": [],
        }))
        .into_response()
    };
    resp.headers_mut().insert("x-meridian-citations", HeaderValue::from(0));
    resp.headers_mut().insert("x-meridian-grounded", HeaderValue::from_static("false"));
    resp
}
