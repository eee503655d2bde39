//! The caller's say over the response caches, from the `x-meridian-cache` request header:
//! `bypass` (or `no-cache`) skips them, `refresh` skips the read but stores the new
//! answer, anything else uses them. Both hosts read it the same way.

/// Header a request names its cache mode in.
pub const HEADER: &str = "x-meridian-cache";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Use,
    Bypass,
    Refresh,
}

impl Mode {
    /// The mode for the header's value (`None` when absent).
    pub fn from_header(value: Option<&str>) -> Mode {
        match value {
            Some("bypass") | Some("no-cache") => Mode::Bypass,
            Some("refresh") => Mode::Refresh,
            _ => Mode::Use,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        assert_eq!(Mode::from_header(None), Mode::Use);
        assert_eq!(Mode::from_header(Some("bypass")), Mode::Bypass);
        assert_eq!(Mode::from_header(Some("no-cache")), Mode::Bypass);
        assert_eq!(Mode::from_header(Some("refresh")), Mode::Refresh);
        assert_eq!(Mode::from_header(Some("whatever")), Mode::Use);
    }
}
