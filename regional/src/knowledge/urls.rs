//! `POST /v1/knowledge-bases/{id}/documents/urls` with `{"urls": [...]}`: fetches each
//! URL (http/https only, bounded size and time, no redirects followed, and — unless
//! `allow_private_urls` — never an address inside the region's own network) and ingests
//! it like an upload. Each URL succeeds or fails on its own; the answer lists both.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use crate::rag::ingest::NewDocument;
use meridian_shared::api::GatewayError;
use meridian_shared::config::IngestSettings;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{context, errors, parse_id, Caller};
use crate::http::error::ApiError;
use crate::http::body;
use crate::state::SharedState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlIngest {
    urls: Vec<String>,
    #[serde(default)]
    language: Option<String>,
}

/// Loopback, private, link-local, CGNAT, unspecified and multicast addresses.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => v.is_loopback() || v.is_private() || v.is_link_local() || v.is_unspecified() || v.is_multicast() || v.is_broadcast() || (v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64),
        IpAddr::V6(v) => {
            v.is_loopback() || v.is_unspecified() || v.is_multicast() || (v.segments()[0] & 0xfe00) == 0xfc00 || (v.segments()[0] & 0xffc0) == 0xfe80 || v.to_ipv4_mapped().map(|m| is_internal(IpAddr::V4(m))).unwrap_or(false)
        }
    }
}

struct Fetched {
    bytes: Vec<u8>,
    media_type: Option<String>,
}

async fn fetch(raw: &str, s: &IngestSettings) -> Result<Fetched, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("only http and https URLs are fetched, not {}:", url.scheme()));
    }
    let host = url.host_str().ok_or("the URL has no host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<_> = tokio::net::lookup_host((host.trim_matches(|c| c == '[' || c == ']'), port)).await.map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    let addr = *addrs.first().ok_or_else(|| format!("{host} has no address"))?;
    if !s.allow_private_urls && addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(format!("{host} resolves to an internal address; refusing to fetch it"));
    }
    // Pinned to the address just checked, so a second DNS answer cannot point elsewhere.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(s.url_timeout_ms))
        .resolve(&host, addr)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| if e.is_timeout() { format!("timed out after {} ms", s.url_timeout_ms) } else { format!("fetch failed: {e}") })?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(format!("HTTP {status}: redirects are not followed; give the final URL"));
    }
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    if resp.content_length().is_some_and(|n| n as usize > s.max_document_bytes) {
        return Err(format!("larger than the limit of {} bytes", s.max_document_bytes));
    }
    let media_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut bytes = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(part) = body.next().await {
        let part = part.map_err(|e| if e.is_timeout() { format!("timed out after {} ms", s.url_timeout_ms) } else { format!("fetch failed: {e}") })?;
        if bytes.len() + part.len() > s.max_document_bytes {
            return Err(format!("larger than the limit of {} bytes", s.max_document_bytes));
        }
        bytes.extend_from_slice(&part);
    }
    Ok(Fetched { bytes, media_type })
}

fn title_of(url: &str) -> String {
    url.trim_end_matches('/').rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or(url).to_string()
}

pub async fn ingest(State(st): State<SharedState>, Path(kb): Path<String>, who: Option<Caller>, body: Body) -> Response {
    let run = async {
        let (p, dp) = context(&st, who)?;
        let kb_id = parse_id("knowledge base", &kb)?;
        let body = body::read_body(body, 256 * 1024).await?;
        let ask: UrlIngest = body::parse_json(&body)?;
        let s = dp.settings.ingest;
        if ask.urls.is_empty() || ask.urls.len() > s.max_urls {
            return Err(GatewayError::invalid_param(format!("send 1 to {} URLs", s.max_urls), "urls").into());
        }
        let mut results: Vec<Value> = Vec::with_capacity(ask.urls.len());
        let mut ingested = 0;
        for url in &ask.urls {
            let outcome = match fetch(url, &s).await {
                Err(reason) => Err(GatewayError::invalid_param(format!("{url}: {reason}"), "urls")),
                Ok(f) => {
                    let doc = NewDocument { kb_id, title: title_of(url), media_type: f.media_type, file_name: reqwest::Url::parse(url).ok().map(|u| u.path().to_string()), source_url: Some(url.clone()), language: ask.language.clone(), bytes: f.bytes };
                    dp.ingestor().ingest(&p.tenant, doc).await.map_err(|e| errors::ingest(e).error)
                }
            };
            results.push(match outcome {
                Ok(d) => {
                    ingested += 1;
                    json!({"url": url, "status": "ingested", "document": d})
                }
                Err(e) => {
                    if matches!(e, GatewayError::ResourceNotFound(_)) {
                        return Err(e.into());
                    }
                    json!({"url": url, "status": "failed", "error": e.envelope().error})
                }
            });
        }
        Ok::<_, ApiError>(Json(json!({"object": "list", "ingested": ingested, "failed": results.len() - ingested, "data": results})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for a in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1"] {
            assert!(is_internal(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "2606:2800:220:1::1", "100.128.0.1"] {
            assert!(!is_internal(a.parse().unwrap()), "{a}");
        }
    }
}
