//! `GET /v1/admin/usage` (the caller's tenant's recent events), `GET
//! /v1/admin/usage/summary` (aggregates from the rollups) and `POST /internal/usage`
//! (events the edge sends with its secret; refused for tenants homed in another region).

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use meridian_shared::api::GatewayError;
use meridian_shared::auth::Principal;
use meridian_shared::usage::UsageEvent;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::body;
use crate::state::SharedState;

/// Largest usage event accepted.
const MAX_EVENT_BYTES: usize = 64 * 1024;

pub async fn report(State(st): State<SharedState>, Extension(p): Extension<Principal>) -> Response {
    let events = st.usage.for_tenant(&p.tenant);
    let cost: f64 = events.iter().filter_map(|e| e.cost_usd).sum::<f64>() + 0.0;
    // Media jobs run in worker processes: their usage is read from the job store.
    let media = match (st.data.as_deref(), st.media.is_some()) {
        (Some(dp), true) => match (crate::media::store::JobStore { db: &dp.db }).usage(&p.tenant).await {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "media usage unavailable");
                None
            }
        },
        _ => None,
    };
    Json(json!({"region": st.config.server.region, "tenant": p.tenant, "total_cost_usd": cost, "events": events, "media": media})).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// Unix seconds; default: 30 days before `end_time`.
    start_time: Option<i64>,
    /// Unix seconds, exclusive; default: now.
    end_time: Option<i64>,
    group_by: Option<crate::usage::rollup::GroupBy>,
    limit: Option<i64>,
}

/// `GET /v1/admin/usage/summary?start_time&end_time&group_by=day|hour|model|feature|user&limit`:
/// the caller's tenant, from the rollups.
pub async fn summary(State(st): State<SharedState>, Extension(p): Extension<Principal>, q: Result<axum::extract::Query<SummaryQuery>, axum::extract::rejection::QueryRejection>) -> Response {
    use crate::usage::rollup::{self, GroupBy};
    let result = async {
        let axum::extract::Query(q) = q.map_err(|e| GatewayError::invalid(format!("query string: {}", e.body_text())))?;
        let dp = st.data.as_deref().ok_or_else(|| GatewayError::Unavailable("this region has no data plane configured".into()))?;
        let end = q.end_time.unwrap_or_else(|| crate::clock::unix_secs() as i64 + 1);
        let start = q.start_time.unwrap_or(end - 30 * 86_400);
        let by = q.group_by.unwrap_or(GroupBy::Day);
        let rows = rollup::summary(&dp.db, &p.tenant, start, end, by, q.limit.unwrap_or(100)).await?;
        let total_cost: f64 = rows.iter().map(|r| r.cost_usd).sum();
        Ok::<_, GatewayError>(Json(json!({"object": "usage.summary", "tenant": p.tenant, "start_time": start, "end_time": end, "group_by": by, "data": rows, "total_cost_usd": total_cost})))
    }
    .await;
    match result {
        Ok(j) => j.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn ingest(State(st): State<SharedState>, headers: HeaderMap, req: Request) -> Response {
    if let Err(e) = crate::internal::check(&st, &headers) {
        return ApiError::from(e).into_response();
    }
    let result = async {
        let bytes = body::read_body(req.into_body(), MAX_EVENT_BYTES).await?;
        let e: UsageEvent = body::parse_json(&bytes)?;
        let tenant = st.config.tenant(&e.tenant).ok_or_else(|| GatewayError::invalid(format!("unknown tenant {:?}", e.tenant)))?;
        if tenant.region != st.config.server.region {
            return Err(GatewayError::Forbidden(format!("tenant {} is homed in region {}; its usage is not stored here", e.tenant, tenant.region.as_str())));
        }
        if let Some(l) = &e.semantic {
            crate::semantic_cache::record(&e.tenant, &e.via, l);
        }
        crate::observability::attempts(&e.attempts, &e.via);
        // The same path as this region's own events: the store, PostgreSQL, the rollups.
        crate::usage::emit(e);
        Ok::<_, GatewayError>(())
    }
    .await;
    match result {
        Ok(()) => (axum::http::StatusCode::ACCEPTED, Json(json!({"accepted": true}))).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
