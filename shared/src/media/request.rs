//! The media requests Meridian accepts, in OpenAI's shapes where one exists
//! (`/v1/images/generations`, `/v1/audio/speech`, `/v1/audio/transcriptions`), plus
//! `/v1/videos/generations`; each validated against explicit limits before a job exists.

use serde::{Deserialize, Serialize};

use crate::api::GatewayError;
use crate::config::MediaLimits;

/// What a job produces; each kind has its own queue (speech and transcription share the
/// audio queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Speech,
    Transcription,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Speech => "speech",
            MediaKind::Transcription => "transcription",
            MediaKind::Video => "video",
        }
    }

    pub fn from_name(s: &str) -> Option<MediaKind> {
        [MediaKind::Image, MediaKind::Speech, MediaKind::Transcription, MediaKind::Video].into_iter().find(|k| k.as_str() == s)
    }

    /// The worker pool (`meridian-regional worker --media …`) that runs it.
    pub fn queue(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Speech | MediaKind::Transcription => "audio",
            MediaKind::Video => "video",
        }
    }

    /// Whether a request without `async` is answered synchronously (short jobs only).
    pub fn sync_by_default(self) -> bool {
        !matches!(self, MediaKind::Video)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRequest {
    pub model: String,
    pub prompt: String,
    #[serde(default = "one")]
    pub n: u32,
    #[serde(default = "default_size")]
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// `url` (default: a presigned link to the object store) or `b64_json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub run_async: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechRequest {
    pub model: String,
    pub input: String,
    pub voice: String,
    /// mp3 (default) or wav.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub run_async: Option<bool>,
}

/// The form fields of a multipart transcription upload; the audio itself travels beside.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TranscriptionRequest {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// json (default), text or verbose_json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    /// The uploaded file's name and content type.
    pub filename: String,
    pub content_type: String,
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub run_async: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoRequest {
    pub model: String,
    pub prompt: String,
    /// Seconds.
    #[serde(default = "five")]
    pub duration: u32,
    /// `1280:720`, `720:1280`, ...
    #[serde(default = "default_ratio")]
    pub ratio: String,
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub run_async: Option<bool>,
}

fn one() -> u32 {
    1
}
fn five() -> u32 {
    5
}
fn default_size() -> String {
    "1024x1024".into()
}
fn default_ratio() -> String {
    "1280:720".into()
}

/// Any media request, as a job stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaRequest {
    Image(ImageRequest),
    Speech(SpeechRequest),
    Transcription(TranscriptionRequest),
    Video(VideoRequest),
}

pub const IMAGE_SIZES: &[&str] = &["256x256", "512x512", "1024x1024", "1024x1536", "1536x1024", "1024x1792", "1792x1024"];
pub const SPEECH_FORMATS: &[&str] = &["mp3", "wav"];
pub const TRANSCRIPTION_FORMATS: &[&str] = &["json", "text", "verbose_json"];
pub const AUDIO_UPLOAD_TYPES: &[&str] = &["flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"];
pub const VIDEO_RATIOS: &[&str] = &["1280:720", "720:1280", "960:960"];

fn bad(message: String, param: &str) -> GatewayError {
    GatewayError::invalid_param(message, param)
}

fn non_empty(text: &str, max: usize, param: &str) -> Result<(), GatewayError> {
    if text.trim().is_empty() {
        return Err(bad(format!("`{param}` must not be empty"), param));
    }
    if text.chars().count() > max {
        return Err(bad(format!("`{param}` is longer than {max} characters"), param));
    }
    Ok(())
}

impl MediaRequest {
    pub fn kind(&self) -> MediaKind {
        match self {
            MediaRequest::Image(_) => MediaKind::Image,
            MediaRequest::Speech(_) => MediaKind::Speech,
            MediaRequest::Transcription(_) => MediaKind::Transcription,
            MediaRequest::Video(_) => MediaKind::Video,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            MediaRequest::Image(r) => &r.model,
            MediaRequest::Speech(r) => &r.model,
            MediaRequest::Transcription(r) => &r.model,
            MediaRequest::Video(r) => &r.model,
        }
    }

    /// Whether the caller asked for a job (202) rather than the answer itself.
    pub fn wants_async(&self) -> bool {
        let asked = match self {
            MediaRequest::Image(r) => r.run_async,
            MediaRequest::Speech(r) => r.run_async,
            MediaRequest::Transcription(r) => r.run_async,
            MediaRequest::Video(r) => r.run_async,
        };
        asked.unwrap_or(!self.kind().sync_by_default())
    }

    /// Checks every field against `limits`; `upload_bytes` is the size of a
    /// transcription's audio.
    pub fn validate(&self, limits: &MediaLimits, upload_bytes: usize) -> Result<(), GatewayError> {
        if self.model().trim().is_empty() {
            return Err(bad("`model` must not be empty".into(), "model"));
        }
        match self {
            MediaRequest::Image(r) => {
                non_empty(&r.prompt, limits.max_prompt_chars, "prompt")?;
                if r.n == 0 || r.n > limits.max_images {
                    return Err(bad(format!("`n` must be between 1 and {}", limits.max_images), "n"));
                }
                if !IMAGE_SIZES.contains(&r.size.as_str()) {
                    return Err(bad(format!("unsupported size {:?}; one of {}", r.size, IMAGE_SIZES.join(", ")), "size"));
                }
                if let Some(f) = &r.response_format {
                    if f != "url" && f != "b64_json" {
                        return Err(bad(format!("unsupported response_format {f:?}; url or b64_json"), "response_format"));
                    }
                }
            }
            MediaRequest::Speech(r) => {
                non_empty(&r.input, limits.max_speech_chars, "input")?;
                non_empty(&r.voice, 64, "voice")?;
                if let Some(f) = &r.response_format {
                    if !SPEECH_FORMATS.contains(&f.as_str()) {
                        return Err(bad(format!("unsupported response_format {f:?}; one of {}", SPEECH_FORMATS.join(", ")), "response_format"));
                    }
                }
                if r.speed.is_some_and(|s| !(0.25..=4.0).contains(&s)) {
                    return Err(bad("`speed` must be between 0.25 and 4.0".into(), "speed"));
                }
            }
            MediaRequest::Transcription(r) => {
                if upload_bytes == 0 {
                    return Err(bad("`file` is missing or empty".into(), "file"));
                }
                if upload_bytes > limits.max_audio_bytes {
                    return Err(bad(format!("`file` is larger than {} bytes", limits.max_audio_bytes), "file"));
                }
                let ext = r.filename.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
                if !AUDIO_UPLOAD_TYPES.contains(&ext.as_str()) {
                    return Err(bad(format!("unsupported audio file {:?}; one of {}", r.filename, AUDIO_UPLOAD_TYPES.join(", ")), "file"));
                }
                if let Some(f) = &r.response_format {
                    if !TRANSCRIPTION_FORMATS.contains(&f.as_str()) {
                        return Err(bad(format!("unsupported response_format {f:?}; one of {}", TRANSCRIPTION_FORMATS.join(", ")), "response_format"));
                    }
                }
            }
            MediaRequest::Video(r) => {
                non_empty(&r.prompt, limits.max_prompt_chars, "prompt")?;
                if r.duration == 0 || r.duration > limits.max_video_seconds {
                    return Err(bad(format!("`duration` must be between 1 and {} seconds", limits.max_video_seconds), "duration"));
                }
                if !VIDEO_RATIOS.contains(&r.ratio.as_str()) {
                    return Err(bad(format!("unsupported ratio {:?}; one of {}", r.ratio, VIDEO_RATIOS.join(", ")), "ratio"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(v: serde_json::Value) -> Result<MediaRequest, String> {
        serde_json::from_value::<ImageRequest>(v).map(MediaRequest::Image).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_input_is_refused_with_the_field_named() {
        let l = MediaLimits::default();
        let ok = image(serde_json::json!({"model": "img", "prompt": "A lighthouse"})).unwrap();
        assert!(ok.validate(&l, 0).is_ok());
        assert!(!ok.wants_async(), "images are synchronous unless asked");
        let param = |r: MediaRequest, n: usize| match r.validate(&l, n) {
            Err(GatewayError::InvalidRequest { param, .. }) => param.unwrap_or_default(),
            other => panic!("{other:?}"),
        };
        assert_eq!(param(image(serde_json::json!({"model": "img", "prompt": "  "})).unwrap(), 0), "prompt");
        assert_eq!(param(image(serde_json::json!({"model": "img", "prompt": "x", "size": "999x999"})).unwrap(), 0), "size");
        assert_eq!(param(image(serde_json::json!({"model": "img", "prompt": "x", "n": 0})).unwrap(), 0), "n");
        assert!(image(serde_json::json!({"model": "img", "prompt": "x", "colour": "red"})).is_err(), "unknown fields are refused");
        let speech = |f: &str| {
            MediaRequest::Speech(SpeechRequest { model: "tts".into(), input: "Hello".into(), voice: "alloy".into(), response_format: Some(f.into()), speed: None, instructions: None, run_async: None })
        };
        assert!(speech("mp3").validate(&l, 0).is_ok());
        assert_eq!(param(speech("flac"), 0), "response_format");
        let t = |name: &str| MediaRequest::Transcription(TranscriptionRequest { model: "whisper".into(), filename: name.into(), content_type: "audio/wav".into(), ..Default::default() });
        assert!(t("a.wav").validate(&l, 10).is_ok());
        assert_eq!(param(t("a.wav"), 0), "file");
        assert_eq!(param(t("a.wav"), l.max_audio_bytes + 1), "file");
        assert_eq!(param(t("a.exe"), 10), "file");
        let v = MediaRequest::Video(VideoRequest { model: "gen".into(), prompt: "waves".into(), duration: 5, ratio: "1280:720".into(), run_async: None });
        assert!(v.validate(&l, 0).is_ok());
        assert!(v.wants_async(), "video is asynchronous by default");
        assert_eq!(MediaKind::Transcription.queue(), "audio");
    }
}
