//! `GET /v1/models`: the aliases this caller may use — by its tenant's allow-list and its
//! roles' model grants, as at the edge — in OpenAI's list shape.

use axum::extract::State;
use axum::{Extension, Json};
use meridian_shared::auth::Principal;
use serde_json::{json, Value};

use crate::state::SharedState;

pub async fn list(State(st): State<SharedState>, Extension(p): Extension<Principal>) -> Json<Value> {
    let data: Vec<Value> = st.router.visible_models(&p, &st.config.roles).into_iter().map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "meridian"})).collect();
    Json(json!({"object": "list", "data": data}))
}
