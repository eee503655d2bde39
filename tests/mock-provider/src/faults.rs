//! Fault directives. A request selects faults by its model name (`gpt-4o@status=503,retry_after=2`),
//! by the `x-mock-fault` header, or by the `--faults` config file (model → directives).

use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Answer with this HTTP status and the provider's error body.
    pub status: Option<u16>,
    /// `Retry-After` seconds on error responses.
    pub retry_after: Option<u64>,
    /// `Retry-After` as an HTTP date this many seconds ahead.
    pub retry_after_date: Option<u64>,
    /// Only the first N requests for this model fail (then healthy).
    pub fail_first: Option<u64>,
    /// Down (503) for this many seconds after the first request, then healthy.
    pub flap_secs: Option<u64>,
    /// Reset the TCP connection before any header.
    pub reset: bool,
    /// Accept the request and never answer.
    pub hang: bool,
    /// Delay before response headers.
    pub latency: Option<Latency>,
    /// Delay between headers and the first token (streams) or the body (non-stream).
    pub ttft: Option<Duration>,
    /// Stream pacing in tokens per second.
    pub tps: Option<u64>,
    /// Number of answer tokens.
    pub tokens: Option<usize>,
    /// Close the stream abruptly after N tokens.
    pub cut_after: Option<usize>,
    /// Stop sending (but keep the connection open) after N tokens.
    pub stall_after: Option<usize>,
    /// Send a malformed chunk after N tokens.
    pub malformed_after: Option<usize>,
    /// Send the provider's in-stream error event after N tokens.
    pub error_after: Option<usize>,
    /// Finish without the terminator (`[DONE]`, `message_stop`, Gemini finish reason).
    pub no_done: bool,
    pub context_length: bool,
    pub content_policy: bool,
    /// Answer with a tool call when tools are offered.
    pub tool_call: bool,
    /// Serve this file verbatim.
    pub replay: Option<String>,
    /// Video tasks: polls until the task ends (the first sees PENDING, then RUNNING).
    pub task_polls: Option<u64>,
    /// Video tasks: end in FAILED.
    pub task_fail: bool,
    /// The model accepts an assistant prefill and carries on from it.
    pub prefill: bool,
    /// The old, too-kind behaviour: any continuation (prefill or instruction) gets
    /// exactly the rest of the answer.
    pub cooperative: bool,
    /// The server needs no API key (vLLM or Ollama without one).
    pub no_auth: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    Fixed(Duration),
    /// Uniformly distributed between the two bounds.
    Uniform(Duration, Duration),
}

fn ms(v: &str) -> Result<Duration, String> {
    v.parse::<u64>().map(Duration::from_millis).map_err(|_| format!("{v:?} is not a number of milliseconds"))
}

fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("fault {k}: {v:?} is not a number"))
}

impl Faults {
    /// Parses `a=1,b,c=2`; later directives override earlier ones.
    pub fn parse_into(&mut self, spec: &str) -> Result<(), String> {
        for d in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = d.split_once('=').unwrap_or((d, ""));
            match k {
                "status" => self.status = Some(num(k, v)?),
                "retry_after" => self.retry_after = Some(num(k, v)?),
                "retry_after_date" => self.retry_after_date = Some(num(k, v)?),
                "fail_first" => self.fail_first = Some(num(k, v)?),
                "flap" => self.flap_secs = Some(num(k, v)?),
                "reset" => self.reset = true,
                "hang" => self.hang = true,
                "latency" => {
                    self.latency = Some(match v.split_once('-') {
                        Some((a, b)) => Latency::Uniform(ms(a)?, ms(b)?),
                        None => Latency::Fixed(ms(v)?),
                    })
                }
                "ttft" => self.ttft = Some(ms(v)?),
                "tps" => self.tps = Some(num(k, v)?),
                "tokens" => self.tokens = Some(num(k, v)?),
                "cut" => self.cut_after = Some(num(k, v)?),
                "stall" => self.stall_after = Some(num(k, v)?),
                "malformed" => self.malformed_after = Some(num(k, v)?),
                "error_after" => self.error_after = Some(num(k, v)?),
                "no_done" => self.no_done = true,
                "context_length" => self.context_length = true,
                "content_policy" => self.content_policy = true,
                "tool_call" => self.tool_call = true,
                "replay" => self.replay = Some(v.to_string()),
                "task_polls" => self.task_polls = Some(num(k, v)?),
                "task_fail" => self.task_fail = true,
                "prefill" => self.prefill = true,
                "cooperative" => self.cooperative = true,
                "no_auth" => self.no_auth = true,
                other => return Err(format!("unknown fault directive {other:?}")),
            }
        }
        Ok(())
    }
}

impl Faults {
    /// The directives for one request, starting from `base`: the `--faults` file's entry
    /// for the model, then the model name's own `@…`, then the `x-mock-fault` header
    /// (later ones win).
    pub fn for_request(file: &std::collections::HashMap<String, String>, model_full: &str, header: Option<&str>, base: Faults) -> Result<Faults, String> {
        let (model, spec) = split_model(model_full);
        let mut f = base;
        if let Some(s) = file.get(model) {
            f.parse_into(s)?;
        }
        f.parse_into(spec)?;
        if let Some(h) = header {
            f.parse_into(h)?;
        }
        Ok(f)
    }

    /// Waits as `hang` (forever) and `latency` (fixed or uniform) say.
    pub async fn delay(&self) {
        if self.hang {
            std::future::pending::<()>().await;
        }
        match self.latency {
            Some(Latency::Fixed(d)) => tokio::time::sleep(d).await,
            Some(Latency::Uniform(a, b)) => {
                let ms = rand::Rng::gen_range(&mut rand::thread_rng(), a.as_millis() as u64..=b.as_millis().max(a.as_millis()) as u64);
                tokio::time::sleep(Duration::from_millis(ms)).await
            }
            None => {}
        }
    }

    /// The status this request fails with, if it fails: `flap` (503 unless `status`)
    /// while the model is young, the first `fail_first` requests, or always with `status`
    /// (500 unless given). `since_first` and `prior` come from the attempt log.
    pub fn failure(&self, since_first: f64, prior: u64) -> Option<u16> {
        let failing = match (self.flap_secs, self.fail_first) {
            (Some(secs), _) => since_first < secs as f64,
            (None, Some(n)) => prior < n,
            (None, None) => self.status.is_some(),
        };
        failing.then(|| self.status.unwrap_or(if self.flap_secs.is_some() { 503 } else { 500 }))
    }
}

/// Splits `name@directives` into the model name and its directives.
pub fn split_model(model: &str) -> (&str, &str) {
    model.split_once('@').unwrap_or((model, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        let mut f = Faults::default();
        f.parse_into("status=503,retry_after=2,latency=5-10,cut=3,no_done").unwrap();
        assert_eq!(f.status, Some(503));
        assert_eq!(f.retry_after, Some(2));
        assert_eq!(f.latency, Some(Latency::Uniform(Duration::from_millis(5), Duration::from_millis(10))));
        assert_eq!(f.cut_after, Some(3));
        assert!(f.no_done);
        assert!(f.parse_into("explode").is_err());
        assert_eq!(split_model("gpt@cut=2"), ("gpt", "cut=2"));
    }
}
