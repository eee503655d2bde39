//! Runway-style asynchronous video: `POST /v1/text_to_video` `{promptText, model, ratio,
//! duration}` → `{"id"}`; `GET /v1/tasks/{id}` → `{status: PENDING|THROTTLED|RUNNING|
//! SUCCEEDED|FAILED|CANCELLED, progress, output: [url], failure}`; the output URL is then
//! downloaded. Headers: `Authorization: Bearer`, `X-Runway-Version`.

use serde_json::{json, Value};

use super::{bad_answer, join, Answer, MediaTarget, TaskState, UpstreamRequest};
use crate::failover::UpstreamError;
use crate::media::MediaRequest;

pub const API_VERSION: &str = "2024-11-06";

fn headers(t: MediaTarget<'_>) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {}", t.api_key)), ("x-runway-version", API_VERSION.into()), ("content-type", "application/json".into())]
}

pub fn build(t: MediaTarget<'_>, req: &MediaRequest) -> UpstreamRequest {
    let body = match req {
        MediaRequest::Video(r) => json!({"promptText": r.prompt, "model": t.model, "ratio": r.ratio, "duration": r.duration}),
        _ => json!({}),
    };
    UpstreamRequest { method: "POST", url: join(t.base_url, "/v1/text_to_video"), headers: headers(t), body: body.to_string().into_bytes() }
}

pub fn parse(body: &[u8]) -> Result<Answer, UpstreamError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_answer(format!("runway: not JSON: {e}")))?;
    v["id"].as_str().map(|id| Answer::Task(id.to_string())).ok_or_else(|| bad_answer("runway: no task id"))
}

pub fn poll(t: MediaTarget<'_>, task: &str) -> UpstreamRequest {
    let mut h = headers(t);
    h.pop();
    UpstreamRequest { method: "GET", url: join(t.base_url, &format!("/v1/tasks/{task}")), headers: h, body: Vec::new() }
}

pub fn parse_poll(body: &[u8]) -> Result<TaskState, UpstreamError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_answer(format!("runway task: not JSON: {e}")))?;
    Ok(match v["status"].as_str().unwrap_or_default() {
        "SUCCEEDED" => TaskState::Succeeded { urls: v["output"].as_array().map(|a| a.iter().filter_map(|u| u.as_str().map(str::to_string)).collect()).unwrap_or_default() },
        "FAILED" | "CANCELLED" => TaskState::Failed { reason: v["failure"].as_str().unwrap_or("the provider failed the task").to_string() },
        "PENDING" | "THROTTLED" | "RUNNING" => TaskState::Pending { progress: v["progress"].as_f64().map(|p| p as f32) },
        other => return Err(bad_answer(format!("runway task: unknown status {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::request::VideoRequest;

    #[test]
    fn submit_poll_and_finish() {
        let t = MediaTarget { base_url: "https://api.dev.runwayml.com/", api_key: "key", model: "gen4_turbo", voice: None };
        let r = MediaRequest::Video(VideoRequest { model: "video".into(), prompt: "Waves at dusk".into(), duration: 5, ratio: "1280:720".into(), run_async: None });
        let up = build(t, &r);
        assert_eq!((up.url.as_str(), up.header("x-runway-version")), ("https://api.dev.runwayml.com/v1/text_to_video", Some(API_VERSION)));
        assert_eq!(serde_json::from_slice::<Value>(&up.body).unwrap(), json!({"promptText": "Waves at dusk", "model": "gen4_turbo", "ratio": "1280:720", "duration": 5}));
        assert_eq!(parse(br#"{"id":"17f20503"}"#).unwrap(), Answer::Task("17f20503".into()));
        assert_eq!(poll(t, "17f20503").url, "https://api.dev.runwayml.com/v1/tasks/17f20503");
        assert_eq!(parse_poll(br#"{"id":"x","status":"RUNNING","progress":0.4}"#).unwrap(), TaskState::Pending { progress: Some(0.4) });
        assert_eq!(parse_poll(br#"{"id":"x","status":"SUCCEEDED","output":["https://cdn/x.mp4"]}"#).unwrap(), TaskState::Succeeded { urls: vec!["https://cdn/x.mp4".into()] });
        assert_eq!(parse_poll(br#"{"id":"x","status":"FAILED","failure":"moderation"}"#).unwrap(), TaskState::Failed { reason: "moderation".into() });
    }
}
