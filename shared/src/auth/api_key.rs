//! API keys are high-entropy random strings, so one SHA-256 is a sufficient and fast
//! digest (the same choice GitHub and Stripe make for tokens); the plaintext is never stored.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyDigest(pub [u8; 32]);

impl ApiKeyDigest {
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s.trim()).ok()?;
        Some(ApiKeyDigest(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

pub fn hash_api_key(key: &str) -> ApiKeyDigest {
    ApiKeyDigest(Sha256::digest(key.as_bytes()).into())
}

/// The token from an `Authorization: Bearer <token>` value.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_roundtrip_and_bearer() {
        let d = hash_api_key("sk-test");
        assert_eq!(ApiKeyDigest::from_hex(&d.to_hex()), Some(d));
        assert_ne!(hash_api_key("sk-test2"), d);
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
