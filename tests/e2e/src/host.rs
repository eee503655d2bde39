//! One gateway under test, whichever host it is: a regional backend alone ([`Stack`]), or
//! the edge Worker in workerd with its regions behind it ([`EdgeStack`]). Scenarios that
//! both hosts must pass are written once against [`Gateway`] and run on each with
//! [`on_both_hosts!`](crate::on_both_hosts).

use std::time::Duration;

use serde_json::Value;

use crate::edge::{EdgeSetup, EdgeStack};
use crate::stack::{Setup, Stack};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Regional,
    Edge,
}

pub enum Gateway {
    Regional(Box<Stack>),
    Edge(Box<EdgeStack>),
}

impl Gateway {
    /// The mock provider, the host, and (for the edge) its EU and US regions, with the
    /// test's `deployments:`, `models:` and any other sections.
    pub async fn start(host: Host, yaml: &str) -> Gateway {
        match host {
            Host::Regional => Gateway::Regional(Box::new(Stack::start(Setup::models(yaml)).await)),
            Host::Edge => Gateway::Edge(Box::new(EdgeStack::start(EdgeSetup::models(yaml)).await)),
        }
    }

    pub fn host(&self) -> Host {
        match self {
            Gateway::Regional(_) => Host::Regional,
            Gateway::Edge(_) => Host::Edge,
        }
    }

    fn http(&self) -> &reqwest::Client {
        match self {
            Gateway::Regional(s) => &s.http,
            Gateway::Edge(s) => &s.http,
        }
    }

    pub fn mock_url(&self) -> &str {
        match self {
            Gateway::Regional(s) => &s.mock.url,
            Gateway::Edge(s) => &s.mock.url,
        }
    }

    /// The EU tenant's key on this host.
    pub fn key(&self) -> &str {
        match self {
            Gateway::Regional(s) => &s.key,
            Gateway::Edge(s) => &s.key_eu,
        }
    }

    pub fn url(&self, path: &str) -> String {
        match self {
            Gateway::Regional(s) => s.url(path),
            Gateway::Edge(s) => s.url(path),
        }
    }

    /// Where the EU tenant's metrics are: the regional host itself, or the edge's EU region
    /// (which records the attempts the edge reports with its usage events).
    pub fn metrics_url(&self) -> String {
        match self {
            Gateway::Regional(s) => s.url("/metrics"),
            Gateway::Edge(s) => format!("{}/metrics", s.eu.url),
        }
    }

    /// A chat request of the EU tenant, never served from a response cache (scenarios
    /// repeat requests on purpose).
    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.http().post(self.url("/v1/chat/completions")).bearer_auth(self.key()).header("x-meridian-cache", "bypass").json(&body).send().await.expect("gateway answers")
    }

    /// Non-stream chat: (status, headers, JSON body).
    pub async fn chat_json(&self, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self.chat(body).await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, headers, v)
    }

    /// Attempts the mock received for models whose name contains `model`.
    pub async fn attempts(&self, model: &str) -> Vec<Value> {
        let v: Value = self.http().get(format!("{}/_mock/attempts", self.mock_url())).query(&[("model", model)]).send().await.unwrap().json().await.unwrap();
        v["attempts"].as_array().cloned().unwrap_or_default()
    }

    /// Waits (bounded, 5 s) until `pred` holds for the mock's attempts on `model`.
    pub async fn attempts_until(&self, model: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut last = Vec::new();
        for _ in 0..250 {
            last = self.attempts(model).await;
            if pred(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        last
    }

    /// The EU tenant's usage events in its home region, once there are `at_least` of them
    /// (bounded wait: events travel off the request path).
    pub async fn usage_events(&self, at_least: usize) -> Vec<Value> {
        let mut last = Vec::new();
        for _ in 0..250 {
            let r = self.http().get(self.url("/v1/admin/usage")).bearer_auth(self.key()).send().await.unwrap();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            last = v["events"].as_array().cloned().unwrap_or_default();
            if last.len() >= at_least {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        last
    }

    /// Waits (bounded, 5 s) until the EU tenant's metrics page contains `needle`.
    pub async fn metrics_containing(&self, needle: &str) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..250 {
            last = self.http().get(self.metrics_url()).send().await.unwrap().text().await.unwrap();
            if last.contains(needle) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(last)
    }
}

/// Runs each named `async fn(Host)` scenario as two tests, `regional::NAME` and
/// `edge::NAME`, so both hosts answer one table of scenarios.
#[macro_export]
macro_rules! on_both_hosts {
    ($($name:ident),* $(,)?) => {
        mod regional {
            $( #[tokio::test] async fn $name() { super::$name($crate::Host::Regional).await } )*
        }
        mod edge {
            $( #[tokio::test] async fn $name() { super::$name($crate::Host::Edge).await } )*
        }
    };
}
