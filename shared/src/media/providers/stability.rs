//! Stability (v1 REST): `POST /v1/generation/{engine}/text-to-image` with `text_prompts`,
//! `Accept: application/json` → `{"artifacts": [{base64, finishReason, seed}]}`;
//! artifacts with `CONTENT_FILTERED` are dropped (all dropped: a content-policy error).

use base64::Engine;
use serde_json::{json, Value};

use super::{bad_answer, join, Answer, MediaTarget, Output, UpstreamRequest};
use crate::failover::{ErrorClass, UpstreamError};
use crate::media::MediaRequest;

pub fn build(t: MediaTarget<'_>, req: &MediaRequest) -> UpstreamRequest {
    let (prompt, n, size) = match req {
        MediaRequest::Image(r) => (r.prompt.as_str(), r.n, r.size.as_str()),
        _ => ("", 1, "1024x1024"),
    };
    let (w, h) = size.split_once('x').and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?))).unwrap_or((1024, 1024));
    let body = json!({"text_prompts": [{"text": prompt, "weight": 1}], "width": w, "height": h, "samples": n});
    UpstreamRequest {
        method: "POST",
        url: join(t.base_url, &format!("/v1/generation/{}/text-to-image", t.model)),
        headers: vec![("authorization", format!("Bearer {}", t.api_key)), ("content-type", "application/json".into()), ("accept", "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

pub fn parse(body: &[u8]) -> Result<Answer, UpstreamError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_answer(format!("stability: not JSON: {e}")))?;
    let artifacts = v["artifacts"].as_array().ok_or_else(|| bad_answer("stability: no `artifacts`"))?;
    let mut out = Vec::new();
    for a in artifacts.iter().filter(|a| a["finishReason"] != "CONTENT_FILTERED") {
        let b64 = a["base64"].as_str().ok_or_else(|| bad_answer("stability: an artifact without `base64`"))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| bad_answer(format!("stability: bad base64: {e}")))?;
        out.push(Output { bytes, content_type: "image/png".into(), ext: "png" });
    }
    if out.is_empty() {
        return Err(UpstreamError::new(ErrorClass::ContentPolicy, Some(200), "stability: every image was filtered (CONTENT_FILTERED)"));
    }
    Ok(Answer::Done(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::request::ImageRequest;

    #[test]
    fn the_documented_request_and_filtered_artifacts() {
        let docs: Value = serde_json::from_slice(&std::fs::read(format!("{}/../tests/fixtures/providers/stability/v1_text_to_image_request.json", env!("CARGO_MANIFEST_DIR"))).unwrap()).unwrap();
        let r = ImageRequest {
            model: "sd".into(),
            prompt: docs["text_prompts"][0]["text"].as_str().unwrap().into(),
            n: 1,
            size: "512x512".into(),
            quality: None,
            response_format: None,
            user: None,
            run_async: None,
        };
        let up = build(MediaTarget { base_url: "https://api.stability.ai", api_key: "sk", model: "stable-diffusion-v1-6", voice: None }, &MediaRequest::Image(r));
        assert_eq!(up.url, "https://api.stability.ai/v1/generation/stable-diffusion-v1-6/text-to-image");
        assert_eq!(up.header("accept"), Some("application/json"));
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        for field in ["text_prompts", "width", "height", "samples"] {
            assert_eq!(sent[field], docs[field], "{field} as documented");
        }
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\n");
        let body = json!({"artifacts": [{"base64": png, "finishReason": "SUCCESS", "seed": 1}, {"base64": png, "finishReason": "CONTENT_FILTERED", "seed": 2}]});
        let Answer::Done(out) = parse(body.to_string().as_bytes()).unwrap() else { panic!() };
        assert_eq!(out.len(), 1, "the filtered artifact is dropped");
        let all = json!({"artifacts": [{"base64": png, "finishReason": "CONTENT_FILTERED", "seed": 2}]});
        assert_eq!(parse(all.to_string().as_bytes()).unwrap_err().class, ErrorClass::ContentPolicy);
    }
}
