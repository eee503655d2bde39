//! API keys are high-entropy random strings, so one SHA-256 is a sufficient and fast
//! digest (the same choice GitHub and Stripe make for tokens); the plaintext is never stored.

use sha2::{Digest, Sha256};

use super::Region;

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

/// Keys issued at runtime read `mk-{region}-{32 base62 characters}` (190 bits): the
/// region tells the edge which region to ask about a key it has not seen.
pub const ISSUED_KEY_PREFIX: &str = "mk-";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_CHARS: usize = 32;
/// How much of a key is shown to people (its prefix), e.g. `mk-eu-Ab3dEf9`.
const SHOWN_CHARS: usize = 13;

/// A new key for `region` from 32 random bytes (the host's randomness).
pub fn new_api_key(region: Region, random: [u8; 32]) -> String {
    let mut key = format!("{ISSUED_KEY_PREFIX}{}-", region.as_str());
    // Rejection-free: each byte picks one of 62 characters (bias < 2^-2, irrelevant at 190 bits).
    key.extend(random.iter().take(SECRET_CHARS).map(|b| BASE62[(*b as usize) % 62] as char));
    key
}

/// The region a runtime-issued key belongs to, if it has the issued format.
pub fn key_region(key: &str) -> Option<Region> {
    let rest = key.strip_prefix(ISSUED_KEY_PREFIX)?;
    let (region, secret) = rest.split_once('-')?;
    if secret.len() != SECRET_CHARS || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match region {
        "eu" => Some(Region::Eu),
        "us" => Some(Region::Us),
        _ => None,
    }
}

/// The part of a key people may see.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(SHOWN_CHARS).collect()
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

    #[test]
    fn issued_keys_name_their_region() {
        let k = new_api_key(Region::Eu, [7u8; 32]);
        assert!(k.starts_with("mk-eu-") && k.len() == 6 + 32, "{k}");
        assert_eq!(key_region(&k), Some(Region::Eu));
        assert_eq!(key_region(&new_api_key(Region::Us, [200u8; 32])), Some(Region::Us));
        assert_eq!(key_region("mk-xx-0123456789abcdef0123456789abcdef"), None);
        assert_eq!(key_region("mk-eu-short"), None);
        assert_eq!(key_region("sk-test-0123"), None);
        assert_eq!(key_prefix(&k).len(), 13);
        assert_ne!(new_api_key(Region::Eu, [1u8; 32]), new_api_key(Region::Eu, [2u8; 32]));
    }
}
