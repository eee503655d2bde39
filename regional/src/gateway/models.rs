//! `GET /v1/models`: the aliases this caller may use, in OpenAI's list shape.

use axum::extract::State;
use axum::{Extension, Json};
use meridian_shared::auth::Principal;
use serde_json::{json, Value};

use crate::state::SharedState;

pub async fn list(State(st): State<SharedState>, Extension(p): Extension<Principal>) -> Json<Value> {
    let data: Vec<Value> = st
        .router
        .model_names
        .iter()
        .filter(|m| p.may_use_model(m))
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "meridian"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}
