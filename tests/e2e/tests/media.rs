//! Media jobs end to end: the regional API, worker processes per media type,
//! real PostgreSQL, Redis (streams, pub/sub) and an S3-compatible server, the mock media
//! providers over HTTP. Files are fetched from their presigned URLs and checked for what
//! they claim to be.

use std::time::Duration;

use futures_util::StreamExt;
use meridian_e2e::*;
use serde_json::{json, Value};

const MEDIA: &str = r#"
deployments:
  - { name: oa, provider: openai, model: gpt-4o }
models:
  - { name: allowed, deployments: [oa] }
media:
  deployments:
    - { name: oa-image, provider: openai, base_url: "{mock}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: gpt-image-1, kind: image, price_per_job_usd: 0.04 }
    - { name: oa-image-down, provider: openai, base_url: "{mock}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: "gpt-image-1@status=503", kind: image }
    - { name: oa-image-policy, provider: openai, base_url: "{mock}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: "gpt-image-1@content_policy", kind: image }
    - { name: sd, provider: stability, base_url: "{mock}", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: sd-1.6, kind: image, price_per_job_usd: 0.01 }
    - { name: oa-tts, provider: openai, base_url: "{mock}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: gpt-4o-mini-tts, kind: speech }
    - { name: eleven, provider: elevenlabs, base_url: "{mock}", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: eleven_multilingual_v2, kind: speech, voice: JBFqnCBsd6RMkjVDRZzb }
    - { name: whisper, provider: openai, base_url: "{mock}/v1", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: whisper-1, kind: transcription }
    - { name: runway, provider: runway, base_url: "{mock}", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: gen4_turbo, kind: video }
    - { name: runway-slow, provider: runway, base_url: "{mock}", api_key_env: MERIDIAN_TEST_PROVIDER_KEY, model: "gen4_turbo@task_polls=60", kind: video }
  models:
    - { name: image, kind: image, deployments: [oa-image] }
    - { name: image-failover, kind: image, deployments: [oa-image-down, sd] }
    - { name: image-down, kind: image, deployments: [oa-image-down] }
    - { name: image-policy, kind: image, deployments: [oa-image-policy, sd] }
    - { name: tts, kind: speech, deployments: [oa-tts] }
    - { name: tts-eleven, kind: speech, deployments: [eleven] }
    - { name: whisper, kind: transcription, deployments: [whisper] }
    - { name: video, kind: video, deployments: [runway] }
    - { name: video-slow, kind: video, deployments: [runway-slow] }
  queue: { visibility_ms: 1000, max_attempts: 2, backoff_base_ms: 50, backoff_max_ms: 200, poll_interval_ms: 50, sync_timeout_ms: 20000, shutdown_grace_ms: 200 }
  limits: { max_audio_bytes: 100000 }
"#;

async fn stack(data: &DataServices, tenant_eu_extra: &str, env: &[(&str, &str)]) -> Stack {
    stack_with(data, MEDIA, tenant_eu_extra, env).await
}

async fn stack_with(data: &DataServices, media: &str, tenant_eu_extra: &str, env: &[(&str, &str)]) -> Stack {
    let mut setup = Setup::models(&format!("{media}{}", data.yaml("")));
    setup.env = data.env();
    setup.env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    setup.tenant_eu_extra = tenant_eu_extra.to_string();
    Stack::start(setup).await
}

async fn post(s: &Stack, key: &str, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut r = s.http.post(s.url(path)).bearer_auth(key).json(&body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let (st, h) = (resp.status().as_u16(), resp.headers().clone());
    (st, h, resp.bytes().await.unwrap().to_vec())
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(b)))
}

async fn get_json(s: &Stack, key: &str, path: &str) -> (u16, Value) {
    let r = s.http.get(s.url(path)).bearer_auth(key).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// Polls the job until `done` holds (bounded: 30 s).
async fn job_until(s: &Stack, key: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = get_json(s, key, &format!("/v1/jobs/{id}")).await.1;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never got there: {last}");
}

async fn fetch(s: &Stack, url: &str) -> Vec<u8> {
    let r = s.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "presigned URL {url}");
    r.bytes().await.unwrap().to_vec()
}

/// (width, height) of a PNG, after checking its signature.
fn png_size(b: &[u8]) -> (u32, u32) {
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(&b[12..16], b"IHDR");
    (u32::from_be_bytes(b[16..20].try_into().unwrap()), u32::from_be_bytes(b[20..24].try_into().unwrap()))
}

/// Collects the SSE job events of `key`'s tenant.
struct Events {
    rx: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl Events {
    async fn open(s: &Stack, key: &str, job: Option<&str>) -> Events {
        let mut req = s.http.get(s.url("/v1/jobs/stream")).bearer_auth(key);
        if let Some(j) = job {
            req = req.query(&[("job", j)]);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(header(resp.headers(), "content-type").starts_with("text/event-stream"));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(i) = buf.find("\n\n") {
                    let frame: String = buf.drain(..i + 2).collect();
                    if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                        let _ = tx.send(serde_json::from_str::<Value>(data).unwrap());
                    }
                }
            }
        });
        Events { rx }
    }

    /// Events until one matches `last` (bounded: 30 s), that one included.
    async fn until(&mut self, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let e = tokio::time::timeout_at(deadline, self.rx.recv()).await.unwrap_or_else(|_| panic!("no matching event; saw {seen:?}")).expect("stream open");
            let done = last(&e);
            seen.push(e);
            if done {
                return seen;
            }
        }
    }

    /// Whatever arrived so far.
    fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(e) = self.rx.try_recv() {
            out.push(e);
        }
        out
    }
}

fn is(e: &Value, kind: &str, job: &str) -> bool {
    e["type"] == kind && e["job_id"] == job
}

#[tokio::test]
async fn jobs_of_every_media_type_run_end_to_end_with_notifications_and_isolation() {
    let data = DataServices::start("eu").await;
    // The receiver refuses the first two calls: the sender retries (0.5 s, 1 s apart).
    let hook = WebhookSink::refusing(2).await;
    let s = stack(&data, &format!(", webhook: {{ url: \"{}\", secret_env: MERIDIAN_TEST_WEBHOOK_SECRET }}", hook.url), &[("MERIDIAN_TEST_WEBHOOK_SECRET", "whsec-test")]).await;
    let _workers = [s.start_worker("image"), s.start_worker("audio"), s.start_worker("video")];
    let mut events = Events::open(&s, &s.key, None).await;
    let mut other_tenant = Events::open(&s, &s.key2, None).await;

    // Image, asynchronous: 202 at once, then events, then the PNG from its presigned URL.
    let (st, _, body) =
        post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "A lighthouse at dusk", "size": "256x256", "async": true}), &[("x-meridian-feature", "banners")]).await;
    let job = json_of(&body);
    assert_eq!((st, job["status"].as_str(), job["kind"].as_str()), (202, Some("queued"), Some("image")), "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["status_url"], format!("/v1/jobs/{id}"));
    let seen = events.until(|e| is(e, "job.succeeded", &id)).await;
    let kinds: Vec<&str> = seen.iter().filter(|e| e["job_id"] == id.as_str()).map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["job.queued", "job.started", "job.succeeded"], "{seen:?}");
    let (st, done) = get_json(&s, &s.key, &format!("/v1/jobs/{id}")).await;
    assert_eq!((st, done["status"].as_str(), done["deployment"].as_str(), done["attempts"].as_i64()), (200, Some("succeeded"), Some("oa-image"), Some(1)), "{done}");
    assert_eq!((done["cost_usd"].as_f64(), done["feature"].as_str(), done["user"].as_str()), (Some(0.04), Some("banners"), Some("k1")));
    let url = done["outputs"][0]["url"].as_str().unwrap().to_string();
    assert!(url.contains("tenants/tenant-eu/media/") && url.contains("X-Amz-Signature="), "a presigned URL under the tenant's prefix: {url}");
    assert_eq!(png_size(&fetch(&s, &url).await), (256, 256));
    assert_eq!(done["outputs"][0]["content_type"], "image/png");

    // Image, synchronous (the default): OpenAI's response shape, as URL or base64.
    let (st, h, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "An otter", "n": 2, "size": "512x512"}), &[]).await;
    let v = json_of(&body);
    assert_eq!(st, 200, "{v}");
    assert!(!header(&h, "x-meridian-job-id").is_empty());
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(png_size(&fetch(&s, v["data"][1]["url"].as_str().unwrap()).await), (512, 512));
    let (st, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "An otter", "response_format": "b64_json", "size": "256x256"}), &[]).await;
    let v = json_of(&body);
    assert_eq!(st, 200);
    use base64::Engine;
    assert_eq!(png_size(&base64::engine::general_purpose::STANDARD.decode(v["data"][0]["b64_json"].as_str().unwrap()).unwrap()), (256, 256));

    // Speech: MP3 and WAV from OpenAI, MP3 from ElevenLabs.
    let (st, h, mp3) = post(&s, &s.key, "/v1/audio/speech", json!({"model": "tts", "input": "Hello there, welcome aboard.", "voice": "alloy"}), &[]).await;
    assert_eq!((st, header(&h, "content-type")), (200, "audio/mpeg"));
    assert!(mp3.len() > 417 && mp3[..2] == [0xFF, 0xFB], "MPEG audio frames");
    let (st, h, wav) = post(&s, &s.key, "/v1/audio/speech", json!({"model": "tts", "input": "Hello.", "voice": "alloy", "response_format": "wav"}), &[]).await;
    assert_eq!((st, header(&h, "content-type"), &wav[..4], &wav[8..12]), (200, "audio/wav", b"RIFF".as_slice(), b"WAVE".as_slice()));
    let (st, _, eleven) = post(&s, &s.key, "/v1/audio/speech", json!({"model": "tts-eleven", "input": "Guten Tag.", "voice": "ignored"}), &[]).await;
    assert!(st == 200 && eleven[..2] == [0xFF, 0xFB]);
    let attempt = s.attempts("eleven_multilingual_v2").await;
    assert_eq!(attempt[0]["path"], "/v1/text-to-speech", "ElevenLabs' own endpoint");

    // Transcription: a multipart upload, sync JSON and async verbose JSON.
    let form = |fmt: &str, is_async: bool| {
        let mut f = reqwest::multipart::Form::new()
            .text("model", "whisper")
            .text("response_format", fmt.to_string())
            .part("file", reqwest::multipart::Part::bytes(wav.clone()).file_name("hello.wav").mime_str("audio/wav").unwrap());
        if is_async {
            f = f.text("async", "true");
        }
        f
    };
    let r = s.http.post(s.url("/v1/audio/transcriptions")).bearer_auth(&s.key).multipart(form("json", false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["text"], format!("Mock transcript of hello.wav ({} bytes).", wav.len()), "the worker sent the uploaded audio itself");
    let r = s.http.post(s.url("/v1/audio/transcriptions")).bearer_auth(&s.key).multipart(form("verbose_json", true)).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let tid = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let t = job_until(&s, &s.key, &tid, |j| j["status"] == "succeeded").await;
    let transcript = json_of(&fetch(&s, t["outputs"][0]["url"].as_str().unwrap()).await);
    assert_eq!(transcript["task"], "transcribe");

    // Video: asynchronous by default, polled with progress, an MP4 with an H.264 track.
    let (st, _, body) = post(&s, &s.key, "/v1/videos/generations", json!({"model": "video", "prompt": "Waves at dusk", "duration": 3}), &[]).await;
    assert_eq!(st, 202);
    let vid = json_of(&body)["id"].as_str().unwrap().to_string();
    let seen = events.until(|e| is(e, "job.succeeded", &vid)).await;
    assert!(seen.iter().any(|e| is(e, "job.progress", &vid) && e["progress"].as_f64().is_some_and(|p| p > 0.0 && p < 1.0)), "progress was reported: {seen:?}");
    let v = get_json(&s, &s.key, &format!("/v1/jobs/{vid}")).await.1;
    let mp4 = fetch(&s, v["outputs"][0]["url"].as_str().unwrap()).await;
    let n = mp4.len() as u64;
    let reader = mp4::Mp4Reader::read_header(std::io::Cursor::new(mp4), n).unwrap();
    let track = reader.tracks().values().next().unwrap();
    assert_eq!((track.media_type().unwrap(), track.sample_count()), (mp4::MediaType::H264, 3));

    // The WebSocket variant of the stream carries the same events.
    let ws_url = s.url("/v1/jobs/stream").replace("http://", "ws://");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url).unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", s.key).parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let (_, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "A kite", "size": "256x256", "async": true}), &[]).await;
    let wid = json_of(&body)["id"].as_str().unwrap().to_string();
    let mut ws_kinds = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let e: Value = serde_json::from_str(&t).unwrap();
            if e["job_id"] == wid.as_str() {
                ws_kinds.push(e["type"].as_str().unwrap().to_string());
                if e["type"] == "job.succeeded" {
                    break;
                }
            }
        }
    }
    assert_eq!(ws_kinds, ["job.queued", "job.started", "job.succeeded"]);

    // Listing: newest first, cursor pagination, filter by status.
    let (st, page1) = get_json(&s, &s.key, "/v1/jobs?limit=2").await;
    assert_eq!((st, page1["data"].as_array().unwrap().len(), page1["has_more"].as_bool()), (200, 2, Some(true)), "{page1}");
    assert_eq!(page1["data"][0]["id"], wid.as_str(), "newest first");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = get_json(&s, &s.key, &format!("/v1/jobs?limit=100&after={cursor}")).await;
    let all: Vec<&str> = page1["data"].as_array().unwrap().iter().chain(page2["data"].as_array().unwrap()).map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(all.len(), 10, "every job once: {all:?}");
    assert!(all.contains(&id.as_str()) && all.contains(&vid.as_str()) && all.contains(&tid.as_str()));
    let (_, ok) = get_json(&s, &s.key, "/v1/jobs?status=succeeded&limit=100").await;
    assert_eq!(ok["data"].as_array().unwrap().len(), 10);

    // Tenant isolation: another tenant of the same region sees none of it.
    for path in [format!("/v1/jobs/{id}"), format!("/v1/jobs/{vid}")] {
        assert_eq!(get_json(&s, &s.key2, &path).await.0, 404, "another tenant's job is not found");
    }
    let r = s.http.delete(s.url(&format!("/v1/jobs/{id}"))).bearer_auth(&s.key2).send().await.unwrap();
    assert_eq!(r.status(), 404, "nor can it be cancelled by another tenant");
    assert_eq!(get_json(&s, &s.key2, "/v1/jobs").await.1["data"].as_array().unwrap().len(), 0);
    assert!(other_tenant.drain().is_empty(), "no event of tenant-eu reached tenant-eu2's stream");
    let listed = data.s3_keys("tenants/").await;
    assert!(listed.iter().all(|k| k.starts_with("tenants/tenant-eu/")), "every object under the tenant's prefix: {listed:?}");
    assert!(data.s3_keys("tenants/tenant-eu/media-uploads/").await.is_empty(), "uploaded audio is deleted once its job has finished");

    // Usage and cost per job, attributed to user and feature tag.
    let (_, usage) = get_json(&s, &s.key, "/v1/admin/usage").await;
    let media = usage["media"].as_array().unwrap_or_else(|| panic!("{usage}"));
    let banners = media.iter().find(|m| m["feature"] == "banners").unwrap_or_else(|| panic!("{usage}"));
    assert_eq!((banners["user"].as_str(), banners["kind"].as_str(), banners["jobs"].as_i64(), banners["cost_usd"].as_f64()), (Some("k1"), Some("image"), Some(1), Some(0.04)));
    assert_eq!(media.iter().map(|m| m["jobs"].as_i64().unwrap()).sum::<i64>(), 10);

    // The tenant's webhook got every finished job, signed.
    let hooks = hook.wait_for(10).await;
    for (sig, body) in &hooks {
        let t: u64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        assert_eq!(sig, &meridian_regional::media::webhook::sign(b"whsec-test", t, body), "a valid signature");
    }
    let hook_jobs: Vec<Value> = hooks.iter().map(|(_, b)| json_of(b)).collect();
    let finished: std::collections::HashSet<&str> = hook_jobs.iter().filter(|e| e["type"] == "job.succeeded").map(|e| e["job_id"].as_str().unwrap()).collect();
    assert_eq!(finished.len(), 10, "every finished job announced, refused calls retried: {hook_jobs:?}");
}

#[tokio::test]
async fn bad_input_is_refused_and_creates_no_job() {
    let data = DataServices::start("eu").await;
    let s = stack(&data, "", &[]).await;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("/v1/images/generations", json!({"model": "image", "prompt": "x", "size": "999x999"}), 400, "size"),
        ("/v1/images/generations", json!({"model": "image", "prompt": "   "}), 400, "prompt"),
        ("/v1/images/generations", json!({"model": "image", "prompt": "x", "n": 50}), 400, "n"),
        ("/v1/images/generations", json!({"model": "image", "prompt": "x", "colour": "red"}), 400, ""),
        ("/v1/images/generations", json!({"model": "no-such-model", "prompt": "x"}), 404, ""),
        ("/v1/images/generations", json!({"model": "tts", "prompt": "x"}), 404, ""),
        ("/v1/audio/speech", json!({"model": "tts", "input": "", "voice": "alloy"}), 400, "input"),
        ("/v1/audio/speech", json!({"model": "tts", "input": "hi", "voice": "alloy", "response_format": "flac"}), 400, "response_format"),
        ("/v1/videos/generations", json!({"model": "video", "prompt": "x", "duration": 60}), 400, "duration"),
    ];
    for (path, body, status, param) in cases {
        let (st, _, b) = post(&s, &s.key, path, body.clone(), &[]).await;
        let v = json_of(&b);
        assert_eq!(st, status, "{path} {body}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "OpenAI error envelope: {v}");
        if !param.is_empty() {
            assert_eq!(v["error"]["param"], param, "{v}");
        }
    }
    let (st, _, _) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "x"}), &[("idempotency-key", &"k".repeat(300))]).await;
    assert_eq!(st, 400, "an over-long Idempotency-Key");
    // Oversized audio (limit 100000 bytes in this config), a missing file, not multipart.
    let big = reqwest::multipart::Form::new().text("model", "whisper").part("file", reqwest::multipart::Part::bytes(vec![0u8; 150_000]).file_name("big.wav"));
    let r = s.http.post(s.url("/v1/audio/transcriptions")).bearer_auth(&s.key).multipart(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let empty = reqwest::multipart::Form::new().text("model", "whisper");
    let r = s.http.post(s.url("/v1/audio/transcriptions")).bearer_auth(&s.key).multipart(empty).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "file");
    let exe = reqwest::multipart::Form::new().text("model", "whisper").part("file", reqwest::multipart::Part::bytes(vec![1u8; 10]).file_name("a.exe"));
    assert_eq!(s.http.post(s.url("/v1/audio/transcriptions")).bearer_auth(&s.key).multipart(exe).send().await.unwrap().status(), 400);
    let r = s.http.post(s.url("/v1/audio/transcriptions")).bearer_auth(&s.key).json(&json!({"model": "whisper"})).send().await.unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(get_json(&s, &s.key, "/v1/jobs/not-a-uuid").await.0, 404);
    assert_eq!(get_json(&s, &s.key, "/v1/jobs?limit=0").await.0, 400);
    let r = s.http.post(s.url("/v1/images/generations")).json(&json!({"model": "image", "prompt": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 401, "no key");
    // A tenant homed in the US is refused by the EU region: its prompts are never
    // processed, nor its media stored, here.
    let (st, _, b) = post(&s, &s.us_key, "/v1/images/generations", json!({"model": "image", "prompt": "x", "async": true}), &[]).await;
    assert_eq!(st, 403, "{}", String::from_utf8_lossy(&b));
    assert_eq!(get_json(&s, &s.us_key, "/v1/jobs").await.0, 403);
    // Nothing was created, nothing was stored, no provider was called.
    assert_eq!(get_json(&s, &s.key, "/v1/jobs").await.1["data"].as_array().unwrap().len(), 0);
    assert!(data.s3_keys("tenants/").await.is_empty(), "no upload left behind");
    assert!(s.attempts("").await.is_empty());
}

#[tokio::test]
async fn failover_retries_dead_letters_cancellation_and_idempotency() {
    let data = DataServices::start("eu").await;
    let s = stack(&data, "", &[]).await;
    let image_worker = s.start_worker("image");

    // Failover: the first deployment is down, Stability answers.
    let (st, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image-failover", "prompt": "A red kite", "size": "256x256", "async": true}), &[]).await;
    assert_eq!(st, 202);
    let id = json_of(&body)["id"].as_str().unwrap().to_string();
    let j = job_until(&s, &s.key, &id, |j| j["status"] == "succeeded").await;
    assert_eq!((j["deployment"].as_str(), j["cost_usd"].as_f64()), (Some("sd"), Some(0.01)));
    assert_eq!(png_size(&fetch(&s, j["outputs"][0]["url"].as_str().unwrap()).await), (256, 256));
    assert_eq!(s.attempts("gpt-image-1@status=503").await.len(), 1);
    assert_eq!(s.attempts("sd-1.6").await[0]["wire"], "stability");

    // Always down: retried with backoff up to max_attempts (2), then failed and dead-lettered.
    let (_, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image-down", "prompt": "x", "async": true}), &[]).await;
    let down = json_of(&body)["id"].as_str().unwrap().to_string();
    let j = job_until(&s, &s.key, &down, |j| j["status"] == "failed").await;
    assert_eq!(j["attempts"], 2, "{j}");
    assert!(j["error"].as_str().unwrap().contains("oa-image-down"), "{j}");
    assert_eq!(s.attempts("gpt-image-1@status=503").await.len(), 3, "one try in the failover job, two here");
    let dead = data.redis.cli(&["XRANGE", "meridian:eu:media:image:dead", "-", "+"]);
    assert!(dead.contains(&down), "dead-lettered: {dead}");
    // A content-policy refusal is not retried, nor failed over (Stability is not tried).
    let sd_before = s.attempts("sd-1.6").await.len();
    let (_, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image-policy", "prompt": "x", "async": true}), &[]).await;
    let pol = json_of(&body)["id"].as_str().unwrap().to_string();
    let j = job_until(&s, &s.key, &pol, |j| j["status"] == "failed").await;
    assert_eq!(j["attempts"], 1);
    assert_eq!(s.attempts("sd-1.6").await.len(), sd_before);
    // Synchronous requests whose job fails get an error envelope.
    let (st, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image-policy", "prompt": "x"}), &[]).await;
    assert_eq!(st, 502, "{}", String::from_utf8_lossy(&body));
    assert!(json_of(&body)["error"]["message"].as_str().unwrap().contains("the job failed"));

    // Idempotency: the same key and request → the same job, run once; another request → 409.
    let idem = [("idempotency-key", "order-42")];
    let (st1, _, b1) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "Only once", "size": "256x256", "async": true}), &idem).await;
    let (st2, h2, b2) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "Only once", "size": "256x256", "async": true}), &idem).await;
    let (first, second) = (json_of(&b1), json_of(&b2));
    assert_eq!((st1, st2, header(&h2, "idempotent-replayed")), (202, 202, "true"));
    assert_eq!(first["id"], second["id"]);
    job_until(&s, &s.key, first["id"].as_str().unwrap(), |j| j["status"] == "succeeded").await;
    let (st3, _, b3) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "Something else", "async": true}), &idem).await;
    assert_eq!(st3, 409, "{}", String::from_utf8_lossy(&b3));
    let (_, _, b4) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "Only once", "size": "256x256", "async": true}), &idem).await;
    assert_eq!(json_of(&b4)["status"], "succeeded", "a replay after completion returns the finished job");
    assert_eq!(s.attempts("gpt-image-1").await.iter().filter(|a| a["last_message"] == "Only once").count(), 1, "run once");
    // The same key in another tenant is another job.
    let (st, _, b) = post(&s, &s.key2, "/v1/images/generations", json!({"model": "image", "prompt": "Only once", "size": "256x256", "async": true}), &idem).await;
    assert_eq!(st, 202);
    assert_ne!(json_of(&b)["id"], first["id"]);

    // Cancellation of a queued job (no video worker yet): it never runs.
    let (_, _, body) = post(&s, &s.key, "/v1/videos/generations", json!({"model": "video", "prompt": "Never made"}), &[]).await;
    let queued = json_of(&body)["id"].as_str().unwrap().to_string();
    let r = s.http.delete(s.url(&format!("/v1/jobs/{queued}"))).bearer_auth(&s.key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "cancelled");
    let r = s.http.delete(s.url(&format!("/v1/jobs/{queued}"))).bearer_auth(&s.key).send().await.unwrap();
    assert_eq!(r.status(), 409, "already cancelled");
    // Cancellation of a running job: the worker stops and keeps nothing.
    let video_worker = s.start_worker("video");
    let mut events = Events::open(&s, &s.key, None).await;
    let (_, _, body) = post(&s, &s.key, "/v1/videos/generations", json!({"model": "video-slow", "prompt": "Cancelled midway"}), &[]).await;
    let running = json_of(&body)["id"].as_str().unwrap().to_string();
    events.until(|e| is(e, "job.progress", &running)).await;
    let r = s.http.delete(s.url(&format!("/v1/jobs/{running}"))).bearer_auth(&s.key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    events.until(|e| is(e, "job.cancelled", &running)).await;
    // The queued-then-cancelled job was delivered to the worker and dropped unrun.
    let (_, _, body) = post(&s, &s.key, "/v1/videos/generations", json!({"model": "video", "prompt": "After the cancellations"}), &[]).await;
    let after = json_of(&body)["id"].as_str().unwrap().to_string();
    job_until(&s, &s.key, &after, |j| j["status"] == "succeeded").await;
    assert!(s.attempts("gen4_turbo").await.iter().all(|a| a["last_message"] != "Never made"), "a job cancelled while queued never reaches a provider");
    let j = get_json(&s, &s.key, &format!("/v1/jobs/{running}")).await.1;
    assert_eq!((j["status"].as_str(), j["outputs"].as_array().map(Vec::len)), (Some("cancelled"), Some(0)));
    drop((image_worker, video_worker));
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_nothing_and_the_job_succeeds_once() {
    let data = DataServices::start("eu").await;
    let s = stack(&data, "", &[]).await;
    let mut first = s.start_worker("video");
    let mut events = Events::open(&s, &s.key, None).await;
    let (_, _, body) = post(&s, &s.key, "/v1/videos/generations", json!({"model": "video-slow", "prompt": "Survives a crash", "duration": 2}), &[]).await;
    let id = json_of(&body)["id"].as_str().unwrap().to_string();
    events.until(|e| is(e, "job.progress", &id)).await;
    // SIGKILL: no shutdown, the delivery stays unacknowledged and the lease runs out.
    let _ = std::process::Command::new("kill").arg("-9").arg(first.pid().to_string()).status();
    assert!(first.exited_within(Duration::from_secs(5)));
    let _second = s.start_worker("video");
    let seen = events.until(|e| is(e, "job.succeeded", &id)).await;
    let j = get_json(&s, &s.key, &format!("/v1/jobs/{id}")).await.1;
    assert_eq!((j["status"].as_str(), j["attempts"].as_i64()), (Some("succeeded"), Some(2)), "{j}");
    assert_eq!(s.attempts("task_polls=60").await.iter().filter(|a| a["path"] == "/v1/text_to_video").count(), 2, "submitted again by the second worker");
    // Exactly once: one success event, one output object.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = events.drain();
    assert_eq!(seen.iter().chain(&late).filter(|e| is(e, "job.succeeded", &id)).count(), 1);
    assert_eq!(data.s3_keys(&format!("tenants/tenant-eu/media/{id}/")).await.len(), 1);

    // Graceful shutdown past the grace period (200 ms) returns the job to the queue.
    drop(_second);
    let mut third = s.start_worker("video");
    let (_, _, body) = post(&s, &s.key, "/v1/videos/generations", json!({"model": "video-slow", "prompt": "Handed back"}), &[]).await;
    let back = json_of(&body)["id"].as_str().unwrap().to_string();
    events.until(|e| is(e, "job.progress", &back)).await;
    third.terminate();
    assert!(third.exited_within(Duration::from_secs(10)), "a worker stops within its grace period");
    let j = get_json(&s, &s.key, &format!("/v1/jobs/{back}")).await.1;
    assert_eq!((j["status"].as_str(), j["attempts"].as_i64()), (Some("queued"), Some(0)), "returned, the attempt not counted: {j}");
    let _fourth = s.start_worker("video");
    job_until(&s, &s.key, &back, |j| j["status"] == "succeeded").await;
}

#[tokio::test]
async fn a_redis_restart_loses_no_job() {
    let mut data = DataServices::start("eu").await;
    let s = stack(&data, "", &[]).await;
    // Jobs accepted while no worker runs...
    let mut ids = Vec::new();
    for i in 0..3 {
        let (st, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": format!("Kept {i}"), "size": "256x256", "async": true}), &[]).await;
        assert_eq!(st, 202);
        ids.push(json_of(&body)["id"].as_str().unwrap().to_string());
    }
    assert_eq!(data.redis.cli(&["XLEN", "meridian:eu:media:image"]).trim(), "3");
    // ...then Redis comes back empty: streams and groups are gone.
    data.redis.restart_empty();
    assert_eq!(data.redis.cli(&["XLEN", "meridian:eu:media:image"]).trim(), "0");
    let _worker = s.start_worker("image");
    for id in &ids {
        let j = job_until(&s, &s.key, id, |j| j["status"] == "succeeded").await;
        assert_eq!(j["attempts"], 1);
    }
    // The API reconnected too: a new job after the restart runs.
    let (st, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "After", "size": "256x256"}), &[]).await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn one_tenant_cannot_starve_another() {
    let data = DataServices::start("eu").await;
    // tenant-eu's jobs run 120 polls (~6 s) each: a wide margin for tenant-eu2's 3-poll job.
    let media = MEDIA.replace("shutdown_grace_ms: 200 }", "shutdown_grace_ms: 200, per_tenant_concurrency: 1 }").replace("task_polls=60", "task_polls=120");
    let s = stack_with(&data, &media, "", &[]).await;
    let _worker = s.start_worker_with("video", &["--concurrency", "2"]);
    let mut mine = Events::open(&s, &s.key, None).await;
    let mut theirs = Events::open(&s, &s.key2, None).await;
    // tenant-eu fills the queue first with two slow jobs...
    let mut busy = Vec::new();
    for i in 0..2 {
        let (st, _, body) = post(&s, &s.key, "/v1/videos/generations", json!({"model": "video-slow", "prompt": format!("Backlog {i}")}), &[]).await;
        assert_eq!(st, 202);
        busy.push(json_of(&body)["id"].as_str().unwrap().to_string());
    }
    // ...tenant-eu2's job, submitted after them, still gets the worker's second slot.
    let (_, _, body) = post(&s, &s.key2, "/v1/videos/generations", json!({"model": "video", "prompt": "Not starved"}), &[]).await;
    let quick = json_of(&body)["id"].as_str().unwrap().to_string();
    theirs.until(|e| is(e, "job.succeeded", &quick)).await;
    let so_far = mine.drain();
    assert_eq!(so_far.iter().filter(|e| e["type"] == "job.succeeded").count(), 0, "tenant-eu2 did not wait for tenant-eu's backlog: {so_far:?}");
    // tenant-eu's own jobs ran one at a time (its limit is 1).
    let mut rest = Vec::new();
    while rest.iter().filter(|e: &&Value| e["type"] == "job.succeeded").count() < busy.len() {
        rest.extend(mine.until(|e| e["type"] == "job.succeeded").await);
    }
    let mut running = 0i32;
    let mut most = 0;
    for e in so_far.iter().chain(&rest) {
        match e["type"].as_str() {
            Some("job.started") => running += 1,
            Some("job.succeeded") => running -= 1,
            _ => {}
        }
        most = most.max(running);
    }
    assert_eq!(most, 1, "never two of tenant-eu's jobs at once: {so_far:?} {rest:?}");
}

#[tokio::test]
async fn a_worker_dying_right_after_a_job_loses_no_webhook_call() {
    let data = DataServices::start("eu").await;
    // The receiver refuses the first call; the worker that finished the job dies at once.
    let hook = WebhookSink::refusing(1).await;
    let s = stack(&data, &format!(", webhook: {{ url: \"{}\", secret_env: MERIDIAN_TEST_WEBHOOK_SECRET }}", hook.url), &[("MERIDIAN_TEST_WEBHOOK_SECRET", "whsec-test")]).await;
    let mut first = s.start_worker("image");
    let mut events = Events::open(&s, &s.key, None).await;
    let (_, _, body) = post(&s, &s.key, "/v1/images/generations", json!({"model": "image", "prompt": "Announce me", "size": "256x256", "async": true}), &[]).await;
    let id = json_of(&body)["id"].as_str().unwrap().to_string();
    events.until(|e| is(e, "job.succeeded", &id)).await;
    let _ = std::process::Command::new("kill").arg("-9").arg(first.pid().to_string()).status();
    assert!(first.exited_within(Duration::from_secs(5)));
    // Another worker process delivers it (from the retry schedule, a reclaimed delivery or
    // the outbox, whichever the first one left behind), signed.
    let _second = s.start_worker("image");
    let hooks = hook.wait_for(1).await;
    let (sig, body) = &hooks[0];
    let e = json_of(body);
    assert_eq!((e["job_id"].as_str(), e["type"].as_str()), (Some(id.as_str()), Some("job.succeeded")));
    let t: u64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
    assert_eq!(sig, &meridian_regional::media::webhook::sign(b"whsec-test", t, body));
}
