//! Envelope encryption at rest. Each tenant has a random 256-bit data key; only its
//! AES-256-GCM wrapping under the master key (from config, never stored) is kept, in
//! `tenant_keys`. Document bytes and chunk text are sealed with the tenant's data key,
//! with the tenant and the item's identity as associated data, so a ciphertext moved to
//! another tenant or item fails to open. Deleting the wrapped key shreds the tenant's data.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

const NONCE: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the master key must be 32 bytes, hex-encoded (64 characters)")]
    BadMasterKey,
    #[error("ciphertext is too short")]
    Truncated,
    #[error("decryption failed: wrong key, wrong context, or tampered data")]
    Open,
}

/// Seals and opens with one 256-bit key.
#[derive(Clone)]
pub struct SealingKey(Aes256Gcm);

impl SealingKey {
    fn new(bytes: &[u8; 32]) -> Self {
        SealingKey(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)))
    }

    /// `nonce || ciphertext+tag`; `context` is authenticated, not stored.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self.0.encrypt(&nonce, Payload { msg: plaintext, aad: context }).expect("AES-GCM encryption does not fail");
        let mut out = Vec::with_capacity(NONCE + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE + 16 {
            return Err(CryptoError::Truncated);
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        self.0.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context }).map_err(|_| CryptoError::Open)
    }
}

/// The master key that wraps tenants' data keys.
pub struct Keyring {
    master: SealingKey,
}

/// A tenant's data key, in memory only.
pub type DataKey = SealingKey;

impl Keyring {
    pub fn from_hex(hex_key: &str) -> Result<Keyring, CryptoError> {
        let bytes: [u8; 32] = hex::decode(hex_key.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(CryptoError::BadMasterKey)?;
        Ok(Keyring { master: SealingKey::new(&bytes) })
    }

    /// A fresh data key for `tenant`, and its wrapping to store.
    pub fn new_data_key(&self, tenant: &str) -> (DataKey, Vec<u8>) {
        let raw: [u8; 32] = Aes256Gcm::generate_key(&mut OsRng).into();
        let wrapped = self.master.seal(tenant.as_bytes(), &raw);
        (SealingKey::new(&raw), wrapped)
    }

    pub fn unwrap(&self, tenant: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let raw: [u8; 32] = self.master.open(tenant.as_bytes(), wrapped)?.try_into().map_err(|_| CryptoError::Open)?;
        Ok(SealingKey::new(&raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::from_hex(&"11".repeat(32)).unwrap()
    }

    #[test]
    fn seal_open_and_every_misuse_fails() {
        let r = ring();
        let (dek, wrapped) = r.new_data_key("t1");
        let sealed = dek.seal(b"t1/doc-1", b"secret text");
        assert_eq!(dek.open(b"t1/doc-1", &sealed).unwrap(), b"secret text");
        assert_eq!(dek.open(b"t2/doc-1", &sealed), Err(CryptoError::Open), "moved to another tenant");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(dek.open(b"t1/doc-1", &tampered), Err(CryptoError::Open));
        assert_eq!(dek.open(b"t1/doc-1", &sealed[..10]), Err(CryptoError::Truncated));
        let again = r.unwrap("t1", &wrapped).unwrap();
        assert_eq!(again.open(b"t1/doc-1", &sealed).unwrap(), b"secret text");
        assert!(r.unwrap("t2", &wrapped).is_err(), "a wrapped key only opens for its tenant");
        let other = Keyring::from_hex(&"22".repeat(32)).unwrap();
        assert!(other.unwrap("t1", &wrapped).is_err(), "only the master key unwraps");
        assert_eq!(Keyring::from_hex("abcd").err(), Some(CryptoError::BadMasterKey));
    }
}
