//! `media:` — media deployments (provider, model, what they make), the media model names
//! callers use with their failover order, the queue's behaviour and the input limits.
//! Read by the regional backend (API and workers); the edge forwards media requests.

use serde::{Deserialize, Serialize};

use crate::media::providers::MediaProviderKind;
use crate::media::MediaKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub deployments: Vec<MediaDeployment>,
    pub models: Vec<MediaModel>,
    #[serde(default)]
    pub queue: QueueSettings,
    #[serde(default)]
    pub limits: MediaLimits,
    /// Lifetime of the presigned URLs results are returned as.
    #[serde(default = "default_url_ttl")]
    pub url_ttl_secs: u64,
    /// If set, result URLs are `{cdn_base_url}/{object key}` instead of presigned ones.
    #[serde(default)]
    pub cdn_base_url: Option<String>,
}

fn default_url_ttl() -> u64 {
    3600
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaDeployment {
    pub name: String,
    pub provider: MediaProviderKind,
    /// Defaults to the provider's public API.
    #[serde(default)]
    pub base_url: Option<String>,
    pub api_key_env: String,
    /// The provider's model (or engine) name.
    pub model: String,
    pub kind: MediaKind,
    /// A provider voice id for speech deployments whose voices are ids (ElevenLabs);
    /// otherwise the request's `voice` is passed on.
    #[serde(default)]
    pub voice: Option<String>,
    /// Cost per job of this deployment (image, speech, transcription, video), if known.
    #[serde(default)]
    pub price_per_job_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaModel {
    pub name: String,
    pub kind: MediaKind,
    /// Tried in order; the next one after a transient failure.
    pub deployments: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// A job a worker took but has not acknowledged for this long is taken by another
    /// worker (`XAUTOCLAIM`), so a worker that dies loses nothing.
    pub visibility_ms: u64,
    /// Attempts per job before it is failed and copied to the dead-letter stream.
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Jobs of one tenant running at once, per region (others wait, re-queued).
    pub per_tenant_concurrency: u32,
    /// One provider call (or a video task's whole polling) may take this long.
    pub provider_timeout_ms: u64,
    /// How often an async provider's task is polled.
    pub poll_interval_ms: u64,
    /// How long a synchronous request waits for its answer.
    pub sync_timeout_ms: u64,
    /// How long a worker asked to stop waits for its current job before returning it.
    pub shutdown_grace_ms: u64,
    /// Workers per queue inside `meridian-regional serve` (0: run `meridian-regional
    /// worker --media …` processes instead, scaled independently).
    pub in_process_workers: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            visibility_ms: 60_000,
            max_attempts: 3,
            backoff_base_ms: 1_000,
            backoff_max_ms: 30_000,
            per_tenant_concurrency: 4,
            provider_timeout_ms: 120_000,
            poll_interval_ms: 2_000,
            sync_timeout_ms: 60_000,
            shutdown_grace_ms: 30_000,
            in_process_workers: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaLimits {
    pub max_prompt_chars: usize,
    pub max_speech_chars: usize,
    pub max_images: u32,
    /// Largest transcription upload (OpenAI's limit is 25 MB).
    pub max_audio_bytes: usize,
    pub max_video_seconds: u32,
    /// Largest result accepted from a provider.
    pub max_result_bytes: usize,
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits { max_prompt_chars: 4000, max_speech_chars: 4096, max_images: 4, max_audio_bytes: 25 * 1024 * 1024, max_video_seconds: 10, max_result_bytes: 64 * 1024 * 1024 }
    }
}

impl MediaConfig {
    pub fn deployment(&self, name: &str) -> Option<&MediaDeployment> {
        self.deployments.iter().find(|d| d.name == name)
    }

    pub fn model(&self, name: &str) -> Option<&MediaModel> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Problems, as (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, m) in self.models.iter().enumerate() {
            if m.deployments.is_empty() {
                out.push((format!("media.models[{i}].deployments"), "must name at least one deployment".into()));
            }
            for (j, d) in m.deployments.iter().enumerate() {
                match self.deployment(d) {
                    None => out.push((format!("media.models[{i}].deployments[{j}]"), format!("no media deployment named {d:?}"))),
                    Some(dep) if dep.kind != m.kind => out.push((format!("media.models[{i}].deployments[{j}]"), format!("{d:?} makes {}, the model makes {}", dep.kind.as_str(), m.kind.as_str()))),
                    Some(dep) if !dep.provider.makes(dep.kind) => out.push((format!("media.models[{i}].deployments[{j}]"), format!("{} cannot make {}", dep.provider.as_str(), dep.kind.as_str()))),
                    _ => {}
                }
            }
        }
        let q = &self.queue;
        if q.visibility_ms == 0 || q.max_attempts == 0 || q.per_tenant_concurrency == 0 || q.provider_timeout_ms == 0 || q.sync_timeout_ms == 0 {
            out.push(("media.queue".into(), "visibility_ms, max_attempts, per_tenant_concurrency, provider_timeout_ms and sync_timeout_ms must be at least 1".into()));
        }
        out
    }
}
