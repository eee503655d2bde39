//! The classes of failure the engine reasons about. Provider adapters map every
//! upstream error onto one of these; the engine never looks at raw bodies.

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    Connect,
    /// No response headers within the first-byte budget.
    FirstByte,
    /// Headers came but no first token within the time-to-first-token budget.
    FirstToken,
    /// The gap between two chunks exceeded the idle budget.
    Idle,
    /// The whole attempt exceeded the total budget.
    Total,
}

impl TimeoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::FirstByte => "first_byte",
            TimeoutKind::FirstToken => "first_token",
            TimeoutKind::Idle => "idle",
            TimeoutKind::Total => "total",
        }
    }
}

/// The classified failure of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 5xx, 408, 409, connection reset or refused: worth retrying.
    Transient,
    /// 429 with an optional server-suggested delay in milliseconds.
    RateLimited { retry_after_ms: Option<u64> },
    /// The prompt does not fit this model's context window.
    ContextLength,
    /// The provider refused the content.
    ContentPolicy,
    /// Our credentials for this deployment are bad, or its quota is exhausted.
    Auth,
    /// The deployment does not exist at the provider (wrong model name, wrong URL).
    NotFound,
    /// The client's request is invalid: the same request fails everywhere.
    BadRequest,
    Timeout(TimeoutKind),
    /// A stream broke (cut, malformed, in-band error, stalled) after `tokens_sent`
    /// output tokens had already been forwarded to the client.
    StreamBroken { tokens_sent: u64 },
    /// The deployment's circuit breaker is open (or its probe is taken): nothing was sent.
    BreakerOpen,
}

impl ErrorClass {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::RateLimited { .. } => "rate_limited",
            ErrorClass::ContextLength => "context_length",
            ErrorClass::ContentPolicy => "content_policy",
            ErrorClass::Auth => "auth",
            ErrorClass::NotFound => "not_found",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::Timeout(_) => "timeout",
            ErrorClass::StreamBroken { .. } => "stream_broken",
            ErrorClass::BreakerOpen => "breaker_open",
        }
    }

    /// Whether the same request may succeed if tried again later (a queued job's retry).
    pub fn retryable_later(&self) -> bool {
        matches!(self, ErrorClass::Transient | ErrorClass::RateLimited { .. } | ErrorClass::Timeout(_) | ErrorClass::StreamBroken { .. } | ErrorClass::BreakerOpen)
    }

    /// Whether this failure says something about the deployment's health (and so
    /// counts against its circuit breaker), rather than about the request.
    pub fn counts_against_deployment(&self) -> bool {
        matches!(
            self,
            ErrorClass::Transient
                | ErrorClass::RateLimited { .. }
                | ErrorClass::Auth
                | ErrorClass::NotFound
                | ErrorClass::Timeout(_)
                | ErrorClass::StreamBroken { .. }
        )
    }
}

/// A classified upstream failure with the provider's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub class: ErrorClass,
    /// HTTP status from the provider, if the failure came with one.
    pub status: Option<u16>,
    /// The provider's message (never contains our credentials).
    pub message: String,
    /// The provider's own error type or code, e.g. `overloaded_error`, `RESOURCE_EXHAUSTED`.
    pub provider_code: Option<String>,
}

impl UpstreamError {
    pub fn new(class: ErrorClass, status: Option<u16>, message: impl Into<String>) -> Self {
        UpstreamError { class, status, message: message.into(), provider_code: None }
    }

    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.provider_code = code;
        self
    }
}
