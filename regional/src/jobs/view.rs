//! A job as the API shows it: status, progress, error, cost, and its files as presigned
//! URLs (or under `media.cdn_base_url`), fresh on every read.

use std::time::Duration;

use crate::media::store::Job;
use meridian_shared::config::MediaConfig;
use serde_json::{json, Value};

use crate::data_plane::DataPlane;

pub async fn job(dp: &DataPlane, settings: &MediaConfig, j: &Job) -> Value {
    let mut outputs = Vec::new();
    for o in &j.outputs {
        let url = match &settings.cdn_base_url {
            Some(base) => Some(format!("{}/{}", base.trim_end_matches('/'), o.key)),
            None => dp.objects.presign_get(&o.key, Duration::from_secs(settings.url_ttl_secs)).await.map_err(|e| tracing::warn!(error = %e, "presigning failed")).ok(),
        };
        outputs.push(json!({"url": url, "content_type": o.content_type, "bytes": o.bytes}));
    }
    json!({
        "id": j.id,
        "object": "job",
        "kind": j.kind.as_str(),
        "model": j.model,
        "status": j.status.as_str(),
        "progress": j.progress,
        "attempts": j.attempts,
        "error": j.error,
        "outputs": outputs,
        "url_expires_in": if settings.cdn_base_url.is_none() && !j.outputs.is_empty() { Some(settings.url_ttl_secs) } else { None },
        "deployment": j.deployment,
        "cost_usd": j.cost_usd,
        "user": j.user,
        "feature": j.feature,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "finished_at": j.finished_at,
        "status_url": format!("/v1/jobs/{}", j.id),
    })
}
