//! `GET /v1/jobs/{id}`, `GET /v1/jobs?limit=&after=&status=` (the caller's tenant only,
//! newest first, cursor-paginated) and `DELETE /v1/jobs/{id}` (cancel).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use crate::media::events::publish;
use crate::media::store::JobStore;
use meridian_shared::api::GatewayError;
use meridian_shared::media::{JobEvent, JobStatus};
use serde::Deserialize;
use serde_json::json;

use super::{context, parse_id, unavailable, view};
use crate::http::error::ApiError;
use crate::knowledge::Caller;
use crate::state::SharedState;

pub const MAX_PAGE: i64 = 100;

pub async fn get(State(st): State<SharedState>, who: Option<Caller>, Path(id): Path<String>) -> Response {
    let result = async {
        let cx = context(&st, who)?;
        let id = parse_id(&id)?;
        // Another tenant's job is simply not found: row-level security hides it.
        let job = JobStore { db: &cx.data.db }.get(&cx.principal.tenant, id).await.map_err(unavailable)?.ok_or_else(|| GatewayError::ResourceNotFound(format!("job {id} does not exist")))?;
        Ok::<_, ApiError>(Json(view::job(cx.data, cx.settings, &job).await).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

pub async fn list(State(st): State<SharedState>, who: Option<Caller>, q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>) -> Response {
    let result = async {
        let cx = context(&st, who)?;
        let Query(q) = q.map_err(|e| GatewayError::invalid(format!("query string: {}", e.body_text())))?;
        let limit = q.limit.unwrap_or(20);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(GatewayError::invalid_param(format!("limit must be between 1 and {MAX_PAGE}"), "limit").into());
        }
        let after = q.after.as_deref().map(parse_id).transpose()?;
        let status = match q.status.as_deref() {
            Some(s) => Some(JobStatus::from_name(s).ok_or_else(|| GatewayError::invalid_param(format!("unknown status {s:?}"), "status"))?),
            None => None,
        };
        let mut jobs = JobStore { db: &cx.data.db }.list(&cx.principal.tenant, after, limit + 1, status).await.map_err(unavailable)?;
        let has_more = jobs.len() as i64 > limit;
        jobs.truncate(limit as usize);
        let mut data = Vec::with_capacity(jobs.len());
        for j in &jobs {
            data.push(view::job(cx.data, cx.settings, j).await);
        }
        let next = if has_more { jobs.last().map(|j| j.id.to_string()) } else { None };
        Ok::<_, ApiError>(Json(json!({"object": "list", "data": data, "has_more": has_more, "next_cursor": next})).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

pub async fn cancel(State(st): State<SharedState>, who: Option<Caller>, Path(id): Path<String>) -> Response {
    let result = async {
        let cx = context(&st, who)?;
        let id = parse_id(&id)?;
        let tenant = &cx.principal.tenant;
        let (job, changed) = JobStore { db: &cx.data.db }.cancel(tenant, id).await.map_err(unavailable)?.ok_or_else(|| GatewayError::ResourceNotFound(format!("job {id} does not exist")))?;
        if !changed {
            return Err(GatewayError::Conflict(format!("job {id} has already {}", job.status.as_str())).into());
        }
        let e = JobEvent::new("cancelled", &id.to_string(), tenant, JobStatus::Cancelled, crate::clock::unix_secs());
        if st.config.tenant(tenant).is_some_and(|t| t.webhook.is_some()) {
            crate::media::webhook::enqueue(&cx.media.queues, &e).await;
        }
        publish(&cx.media.queues, &e).await;
        Ok::<_, ApiError>(Json(view::job(cx.data, cx.settings, &job).await).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
