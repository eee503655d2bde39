//! The plain-data HTTP request an adapter asks its host to send.

use std::fmt;

/// An HTTP request for the host to perform. Header values may hold credentials, so
/// `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("url", &redact_query_key(&self.url))
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

fn redact_query_key(url: &str) -> String {
    match url.find("key=") {
        Some(i) => format!("{}key=<redacted>", &url[..i]),
        None => url.to_string(),
    }
}

impl UpstreamRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Where and as whom to call: one deployment, resolved by the host from config and env.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// Base URL including any version prefix, e.g. `https://api.openai.com/v1`.
    pub base_url: &'a str,
    pub api_key: Option<&'a str>,
    /// The provider's model name.
    pub model: &'a str,
    /// Default output-token cap for providers that require one (Anthropic).
    pub default_max_tokens: u32,
}

impl fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target").field("base_url", &self.base_url).field("model", &self.model).finish()
    }
}

pub(crate) fn join_url(base: &str, path: &str) -> String {
    let mut s = String::with_capacity(base.len() + path.len());
    s.push_str(base.trim_end_matches('/'));
    s.push_str(path);
    s
}
