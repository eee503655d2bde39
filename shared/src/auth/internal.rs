//! The secret the edge and the regional backends share for `/internal/*` calls.

/// The header that carries it.
pub const HEADER: &str = "x-meridian-internal";

/// Whether `presented` is the configured secret, compared in constant time; with no
/// secret configured nothing matches.
pub fn secret_matches(configured: Option<&str>, presented: &str) -> bool {
    let Some(secret) = configured else { return false };
    let (a, b) = (secret.as_bytes(), presented.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_secret_matches() {
        assert!(secret_matches(Some("s3cret"), "s3cret"));
        assert!(!secret_matches(Some("s3cret"), "s3cres"));
        assert!(!secret_matches(Some("s3cret"), "s3cret-longer"));
        assert!(!secret_matches(None, ""));
    }
}
