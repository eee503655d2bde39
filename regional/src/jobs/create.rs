//! Creating media jobs. Every request is validated in full before anything is stored
//! (bad input: a 4xx and no job). Then the job is written to PostgreSQL and enqueued:
//!
//! - asynchronous (`"async": true`, the default for video): `202` with the job at once;
//! - synchronous (the default for images, speech and transcription): the request waits
//!   for the job (`media.queue.sync_timeout_ms`) and answers in OpenAI's shape — `{created,
//!   data: [{url | b64_json}]}` for images, the audio bytes for speech, the transcript for
//!   transcription; a job still running at the timeout is answered `202` like an async one.
//!
//! `Idempotency-Key`: the same key with the same request returns the same job (and never
//! runs it twice); with a different request it is a `409`.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use crate::clock::unix_secs;
use crate::media::events::publish;
use crate::media::store::{request_digest, Created, Job, JobStore, NewJob};
use crate::objects::tenant_key;
use meridian_shared::api::GatewayError;
use meridian_shared::media::request::{ImageRequest, SpeechRequest, TranscriptionRequest, VideoRequest};
use meridian_shared::media::{JobEvent, JobStatus, MediaKind, MediaRequest};
use serde_json::json;

use super::{context, unavailable, view, Context};
use crate::http::error::ApiError;
use crate::http::body;
use crate::knowledge::Caller;
use crate::state::SharedState;

/// Largest JSON body of a media request.
pub const MAX_JSON_BYTES: usize = 64 * 1024;
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub async fn images(State(st): State<SharedState>, who: Option<Caller>, headers: HeaderMap, body: Body) -> Response {
    json_job(st, who, headers, body, |b| body::parse_json::<ImageRequest>(b).map(MediaRequest::Image)).await
}

pub async fn speech(State(st): State<SharedState>, who: Option<Caller>, headers: HeaderMap, body: Body) -> Response {
    json_job(st, who, headers, body, |b| body::parse_json::<SpeechRequest>(b).map(MediaRequest::Speech)).await
}

pub async fn videos(State(st): State<SharedState>, who: Option<Caller>, headers: HeaderMap, body: Body) -> Response {
    json_job(st, who, headers, body, |b| body::parse_json::<VideoRequest>(b).map(MediaRequest::Video)).await
}

async fn json_job(st: SharedState, who: Option<Caller>, headers: HeaderMap, body: Body, parse: impl Fn(&[u8]) -> Result<MediaRequest, GatewayError>) -> Response {
    let result = async {
        let cx = context(&st, who)?;
        let bytes = body::read_body(body, MAX_JSON_BYTES).await?;
        let req = parse(&bytes)?;
        submit(&cx, &headers, req, None).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/audio/transcriptions`: multipart with `file`, `model` and optional
/// `language`, `prompt`, `response_format`, `async`.
pub async fn transcriptions(State(st): State<SharedState>, who: Option<Caller>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let cx = context(&st, who)?;
        let boundary = headers.get("content-type").and_then(|v| v.to_str().ok()).and_then(|c| multer::parse_boundary(c).ok());
        let Some(boundary) = boundary else {
            return Err(GatewayError::UnsupportedMediaType("send the audio as multipart/form-data with a `file` field".into()).into());
        };
        let limit = cx.settings.limits.max_audio_bytes + MAX_JSON_BYTES;
        let body = body::read_body(body, limit).await?;
        let mut t = TranscriptionRequest::default();
        let mut audio: Vec<u8> = Vec::new();
        for part in body::multipart_parts(body, boundary).await? {
            if part.name == "file" {
                t.filename = part.file_name.unwrap_or_else(|| "audio".into());
                t.content_type = part.content_type.unwrap_or_else(|| "application/octet-stream".into());
                audio = part.bytes.to_vec();
                continue;
            }
            let value = String::from_utf8(part.bytes.to_vec()).map_err(|_| GatewayError::invalid_param("form fields must be UTF-8", part.name.clone()))?;
            match part.name.as_str() {
                "model" => t.model = value,
                "language" => t.language = Some(value),
                "prompt" => t.prompt = Some(value),
                "response_format" => t.response_format = Some(value),
                "async" => t.run_async = Some(matches!(value.as_str(), "true" | "1")),
                other => return Err(GatewayError::invalid_param(format!("unknown field `{other}`"), other).into()),
            }
        }
        if audio.len() > cx.settings.limits.max_audio_bytes {
            return Err(GatewayError::PayloadTooLarge { limit: cx.settings.limits.max_audio_bytes }.into());
        }
        submit(&cx, &headers, MediaRequest::Transcription(t), Some(audio)).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, GatewayError> {
    let Some(v) = headers.get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let v = v.to_str().map_err(|_| GatewayError::invalid_param("Idempotency-Key must be printable ASCII", "Idempotency-Key"))?;
    if v.is_empty() || v.len() > 255 {
        return Err(GatewayError::invalid_param("Idempotency-Key must be 1 to 255 characters", "Idempotency-Key"));
    }
    Ok(Some(v.to_string()))
}

async fn submit(cx: &Context<'_>, headers: &HeaderMap, req: MediaRequest, upload: Option<Vec<u8>>) -> Result<Response, ApiError> {
    let p = &cx.principal;
    req.validate(&cx.settings.limits, upload.as_ref().map_or(0, Vec::len))?;
    let model = cx.settings.model(req.model()).filter(|m| m.kind == req.kind()).ok_or_else(|| GatewayError::NotFound(format!("no {} model named {:?}", req.kind().as_str(), req.model())))?;
    if !p.may_use_model(&model.name) {
        return Err(GatewayError::Forbidden(format!("this caller may not use model {:?}", model.name)).into());
    }
    let idem = idempotency_key(headers)?;
    let feature = headers.get("x-meridian-feature").and_then(|v| v.to_str().ok()).map(str::to_string);
    let dp = cx.data;
    let key = dp.db.data_key(&dp.keyring, &p.tenant).await.map_err(unavailable)?;
    let digest = request_digest(&req, upload.as_deref());

    // A transcription's audio goes to the object store first, sealed; it is removed again
    // if no new job takes it.
    let upload_key = match &upload {
        Some(bytes) => {
            let k = tenant_key(&p.tenant, "media-uploads", &uuid::Uuid::new_v4().to_string());
            dp.objects.put(&k, key.seal(k.as_bytes(), bytes), "application/octet-stream").await.map_err(unavailable)?;
            Some(k)
        }
        None => None,
    };
    let store = JobStore { db: &dp.db };
    let new = NewJob { tenant: &p.tenant, user: &p.key_name, feature: feature.as_deref(), request: &req, upload_key: upload_key.as_deref(), idempotency_key: idem.as_deref() };
    let created = store.create(&key, new, &digest).await;
    let drop_upload = || async {
        if let Some(k) = &upload_key {
            let _ = dp.objects.delete(k).await;
        }
    };
    let job = match created {
        Ok(Created::New(job)) => job,
        Ok(Created::Existing(job)) => {
            drop_upload().await;
            let mut r = (StatusCode::ACCEPTED, Json(view::job(dp, cx.settings, &job).await)).into_response();
            r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(r);
        }
        Ok(Created::Conflict) => {
            drop_upload().await;
            return Err(GatewayError::Conflict("this Idempotency-Key was already used with a different request".into()).into());
        }
        Err(e) => {
            drop_upload().await;
            return Err(unavailable(e));
        }
    };
    tracing::info!(tenant = %p.tenant, job = %job.id, kind = job.kind.as_str(), model = %job.model, "media job created");
    let mut events = cx.media.hub.subscribe(&p.tenant);
    // Announced before it is enqueued, so no worker's `job.started` can precede it.
    publish(&cx.media.queues, &JobEvent::new("queued", &job.id.to_string(), &p.tenant, JobStatus::Queued, unix_secs())).await;
    if let Err(e) = cx.media.queues.enqueue(req.kind().queue(), &p.tenant, job.id).await {
        // The job is safe in PostgreSQL; the workers' reconciler will enqueue it.
        tracing::warn!(error = %e, job = %job.id, "enqueue failed; the reconciler will deliver the job");
    }
    if req.wants_async() {
        return Ok((StatusCode::ACCEPTED, Json(view::job(dp, cx.settings, &job).await)).into_response());
    }

    // Synchronous: wait for the job to finish (events, with a store check as a fallback).
    let deadline = Instant::now() + Duration::from_millis(cx.settings.queue.sync_timeout_ms);
    let id = job.id.to_string();
    let mut last = job;
    while Instant::now() < deadline && !last.status.is_final() {
        let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(e) if e.job_id == id && e.status.is_final() => {}
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => tokio::time::sleep(wait).await,
            },
            _ = tokio::time::sleep(wait) => {}
        }
        last = store.get(&p.tenant, last.id).await.map_err(unavailable)?.unwrap_or(last);
    }
    sync_answer(cx, &req, last).await
}

async fn sync_answer(cx: &Context<'_>, req: &MediaRequest, job: Job) -> Result<Response, ApiError> {
    let dp = cx.data;
    let job_header = |mut r: Response, job: &Job| {
        r.headers_mut().insert("x-meridian-job-id", HeaderValue::from_str(&job.id.to_string()).expect("uuid"));
        r
    };
    match job.status {
        JobStatus::Succeeded => {}
        JobStatus::Failed => return Err(GatewayError::Upstream { status: 502, message: format!("the job failed: {}", job.error.as_deref().unwrap_or("unknown error")) }.into()),
        JobStatus::Cancelled => return Err(GatewayError::Upstream { status: 409, message: "the job was cancelled".into() }.into()),
        // Still running at the timeout: answered like an async request.
        _ => return Ok(job_header((StatusCode::ACCEPTED, Json(view::job(dp, cx.settings, &job).await)).into_response(), &job)),
    }
    let r = match (req, job.kind) {
        (MediaRequest::Image(r), MediaKind::Image) => {
            let mut data = Vec::new();
            let v = view::job(dp, cx.settings, &job).await;
            for (i, o) in job.outputs.iter().enumerate() {
                if r.response_format.as_deref() == Some("b64_json") {
                    let bytes = dp.objects.get(&o.key).await.map_err(unavailable)?;
                    data.push(json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(bytes)}));
                } else {
                    data.push(json!({"url": v["outputs"][i]["url"]}));
                }
            }
            Json(json!({"created": job.finished_at.unwrap_or(job.created_at), "data": data})).into_response()
        }
        _ => {
            let o = job.outputs.first().ok_or_else(|| unavailable("a finished job without output"))?;
            let bytes = dp.objects.get(&o.key).await.map_err(unavailable)?;
            ([("content-type", o.content_type.clone())], bytes).into_response()
        }
    };
    Ok(job_header(r, &job))
}
