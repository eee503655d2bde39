//! OpenAI: `POST /images/generations` (JSON, images as `b64_json`), `POST /audio/speech`
//! (JSON in, audio bytes out), `POST /audio/transcriptions` (multipart upload, JSON or
//! text out). `Authorization: Bearer`.

use base64::Engine;
use serde_json::{json, Value};

use super::{bad_answer, join, multipart, Answer, MediaTarget, Output, UpstreamRequest};
use crate::failover::UpstreamError;
use crate::media::MediaRequest;

fn post(t: MediaTarget<'_>, path: &str, content_type: String, body: Vec<u8>) -> UpstreamRequest {
    UpstreamRequest { method: "POST", url: join(t.base_url, path), headers: vec![("authorization", format!("Bearer {}", t.api_key)), ("content-type", content_type)], body }
}

pub fn build(t: MediaTarget<'_>, req: &MediaRequest, upload: Option<&[u8]>) -> UpstreamRequest {
    match req {
        MediaRequest::Image(r) => {
            let mut body = json!({"model": t.model, "prompt": r.prompt, "n": r.n, "size": r.size});
            if let Some(q) = &r.quality {
                body["quality"] = json!(q);
            }
            // DALL·E answers with URLs unless asked; gpt-image models always send base64
            // and refuse the parameter.
            if t.model.starts_with("dall-e") {
                body["response_format"] = json!("b64_json");
            }
            post(t, "/images/generations", "application/json".into(), body.to_string().into_bytes())
        }
        MediaRequest::Speech(r) => {
            let mut body = json!({"model": t.model, "input": r.input, "voice": t.voice.unwrap_or(&r.voice), "response_format": r.response_format.as_deref().unwrap_or("mp3")});
            if let Some(s) = r.speed {
                body["speed"] = json!(s);
            }
            if let Some(i) = &r.instructions {
                body["instructions"] = json!(i);
            }
            post(t, "/audio/speech", "application/json".into(), body.to_string().into_bytes())
        }
        MediaRequest::Transcription(r) => {
            let mut fields = vec![("model", t.model), ("response_format", r.response_format.as_deref().unwrap_or("json"))];
            if let Some(l) = &r.language {
                fields.push(("language", l));
            }
            if let Some(p) = &r.prompt {
                fields.push(("prompt", p));
            }
            let (ct, body) = multipart::form(&fields, ("file", &r.filename, &r.content_type, upload.unwrap_or_default()), "meridian-upload-boundary-7d1f");
            post(t, "/audio/transcriptions", ct, body)
        }
        MediaRequest::Video(_) => post(t, "/videos", "application/json".into(), Vec::new()),
    }
}

pub fn parse(req: &MediaRequest, content_type: &str, body: &[u8]) -> Result<Answer, UpstreamError> {
    match req {
        MediaRequest::Image(_) => {
            let v: Value = serde_json::from_slice(body).map_err(|e| bad_answer(format!("openai images: not JSON: {e}")))?;
            let data = v["data"].as_array().ok_or_else(|| bad_answer("openai images: no `data`"))?;
            let mut out = Vec::new();
            for d in data {
                let b64 = d["b64_json"].as_str().ok_or_else(|| bad_answer("openai images: an image without `b64_json`"))?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| bad_answer(format!("openai images: bad base64: {e}")))?;
                out.push(Output { bytes, content_type: "image/png".into(), ext: "png" });
            }
            if out.is_empty() {
                return Err(bad_answer("openai images: no image in the answer"));
            }
            Ok(Answer::Done(out))
        }
        MediaRequest::Speech(r) => {
            if body.is_empty() {
                return Err(bad_answer("openai speech: empty audio"));
            }
            let wav = r.response_format.as_deref() == Some("wav");
            let ct = if content_type.starts_with("audio/") {
                content_type.to_string()
            } else if wav {
                "audio/wav".into()
            } else {
                "audio/mpeg".into()
            };
            Ok(Answer::Done(vec![Output { bytes: body.to_vec(), content_type: ct, ext: if wav { "wav" } else { "mp3" } }]))
        }
        MediaRequest::Transcription(r) => {
            let text = r.response_format.as_deref() == Some("text");
            if !text {
                serde_json::from_slice::<Value>(body).map_err(|e| bad_answer(format!("openai transcription: not JSON: {e}")))?;
            }
            let (ct, ext) = if text { ("text/plain; charset=utf-8", "txt") } else { ("application/json", "json") };
            Ok(Answer::Done(vec![Output { bytes: body.to_vec(), content_type: ct.into(), ext }]))
        }
        MediaRequest::Video(_) => Err(bad_answer("openai: video is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::request::{ImageRequest, SpeechRequest, TranscriptionRequest};

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../tests/fixtures/providers/openai/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    const T: MediaTarget = MediaTarget { base_url: "https://api.openai.com/v1/", api_key: "sk-test", model: "dall-e-3", voice: None };

    #[test]
    fn images_as_the_docs_show_and_the_recorded_answer_decodes() {
        let docs: Value = serde_json::from_slice(&fixture("images_generation_request_docs.json")).unwrap();
        let r: ImageRequest = serde_json::from_value(docs.clone()).unwrap();
        let up = build(MediaTarget { model: "gpt-image-1.5", ..T }, &MediaRequest::Image(r.clone()), None);
        assert_eq!((up.method, up.url.as_str(), up.header("authorization")), ("POST", "https://api.openai.com/v1/images/generations", Some("Bearer sk-test")));
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(sent, docs, "the docs' own request, field for field");
        let dalle: Value = serde_json::from_slice(&build(T, &MediaRequest::Image(r.clone()), None).body).unwrap();
        assert_eq!(dalle["response_format"], "b64_json");
        let Answer::Done(out) = parse(&MediaRequest::Image(r), "application/json", &fixture("images_generation.json")).unwrap() else { panic!() };
        assert_eq!(out.len(), 2);
        assert!(out[0].bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "the recorded b64_json is a PNG");
    }

    #[test]
    fn speech_and_transcription_wire_formats() {
        let docs: Value = serde_json::from_slice(&fixture("audio_speech_request.json")).unwrap();
        let r = SpeechRequest { model: "tts".into(), input: docs["input"].as_str().unwrap().into(), voice: "alloy".into(), response_format: None, speed: None, instructions: None, run_async: None };
        let up = build(MediaTarget { model: "gpt-4o-mini-tts", ..T }, &MediaRequest::Speech(r.clone()), None);
        let sent: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            (sent["model"].clone(), sent["input"].clone(), sent["voice"].clone(), sent["response_format"].clone()),
            (docs["model"].clone(), docs["input"].clone(), docs["voice"].clone(), json!("mp3"))
        );
        let Answer::Done(out) = parse(&MediaRequest::Speech(r), "audio/mpeg", b"ID3...").unwrap() else { panic!() };
        assert_eq!((out[0].content_type.as_str(), out[0].ext), ("audio/mpeg", "mp3"));

        let t = TranscriptionRequest { model: "stt".into(), response_format: Some("verbose_json".into()), filename: "talk.wav".into(), content_type: "audio/wav".into(), ..Default::default() };
        let up = build(MediaTarget { model: "whisper-1", ..T }, &MediaRequest::Transcription(t.clone()), Some(b"RIFF0000WAVE"));
        assert_eq!(up.url, "https://api.openai.com/v1/audio/transcriptions");
        assert!(up.header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
        let body = String::from_utf8_lossy(&up.body);
        assert!(body.contains("name=\"model\"\r\n\r\nwhisper-1\r\n") && body.contains("filename=\"talk.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF0000WAVE\r\n"));
        let Answer::Done(out) = parse(&MediaRequest::Transcription(t), "application/json", &fixture("audio_transcription.json")).unwrap() else { panic!() };
        assert_eq!(out[0].content_type, "application/json");
    }
}
