//! ElevenLabs: `POST /v1/text-to-speech/{voice_id}?output_format=…`, header `xi-api-key`,
//! body `{text, model_id}` → `audio/mpeg` bytes. WAV is asked for as 24 kHz PCM and
//! wrapped in a RIFF header here.

use serde_json::json;

use super::{bad_answer, join, Answer, MediaTarget, Output, UpstreamRequest};
use crate::failover::UpstreamError;
use crate::media::MediaRequest;

const PCM_RATE: u32 = 24_000;

fn wants_wav(req: &MediaRequest) -> bool {
    matches!(req, MediaRequest::Speech(r) if r.response_format.as_deref() == Some("wav"))
}

pub fn build(t: MediaTarget<'_>, req: &MediaRequest) -> UpstreamRequest {
    let (text, voice) = match req {
        MediaRequest::Speech(r) => (r.input.as_str(), t.voice.unwrap_or(&r.voice)),
        _ => ("", t.voice.unwrap_or_default()),
    };
    let format = if wants_wav(req) { format!("pcm_{PCM_RATE}") } else { "mp3_44100_128".into() };
    UpstreamRequest {
        method: "POST",
        url: join(t.base_url, &format!("/v1/text-to-speech/{voice}?output_format={format}")),
        headers: vec![("xi-api-key", t.api_key.to_string()), ("content-type", "application/json".into()), ("accept", "audio/mpeg".into())],
        body: json!({"text": text, "model_id": t.model}).to_string().into_bytes(),
    }
}

/// A RIFF/WAVE header for 16-bit mono PCM at `rate`, then the samples.
pub fn wav(pcm: &[u8], rate: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(pcm);
    out
}

pub fn parse(req: &MediaRequest, content_type: &str, body: &[u8]) -> Result<Answer, UpstreamError> {
    if body.is_empty() {
        return Err(bad_answer("elevenlabs: empty audio"));
    }
    if wants_wav(req) {
        return Ok(Answer::Done(vec![Output { bytes: wav(body, PCM_RATE), content_type: "audio/wav".into(), ext: "wav" }]));
    }
    let ct = if content_type.starts_with("audio/") { content_type } else { "audio/mpeg" };
    Ok(Answer::Done(vec![Output { bytes: body.to_vec(), content_type: ct.into(), ext: "mp3" }]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::request::SpeechRequest;
    use serde_json::Value;

    #[test]
    fn the_documented_call_and_wav_wrapping() {
        let docs: Value = serde_json::from_slice(&std::fs::read(format!("{}/../tests/fixtures/providers/elevenlabs/text_to_speech_request.json", env!("CARGO_MANIFEST_DIR"))).unwrap()).unwrap();
        let r = SpeechRequest { model: "voice".into(), input: docs["text"].as_str().unwrap().into(), voice: "ignored".into(), response_format: None, speed: None, instructions: None, run_async: None };
        let t = MediaTarget { base_url: "https://api.elevenlabs.io", api_key: "xi", model: "eleven_multilingual_v2", voice: Some("JBFqnCBsd6RMkjVDRZzb") };
        let up = build(t, &MediaRequest::Speech(r.clone()));
        assert_eq!(up.url, "https://api.elevenlabs.io/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb?output_format=mp3_44100_128");
        assert_eq!(up.header("xi-api-key"), Some("xi"));
        assert_eq!(serde_json::from_slice::<Value>(&up.body).unwrap(), docs, "the docs' body");
        let wav_req = MediaRequest::Speech(SpeechRequest { response_format: Some("wav".into()), ..r });
        assert!(build(t, &wav_req).url.ends_with("output_format=pcm_24000"));
        let Answer::Done(out) = parse(&wav_req, "application/octet-stream", &[0u8; 480]).unwrap() else { panic!() };
        assert_eq!(&out[0].bytes[..4], b"RIFF");
        assert_eq!(out[0].bytes.len(), 44 + 480);
    }
}
