//! A test identity provider: RSA, EC P-256 and Ed25519 keys made with `openssl`, a JWKS
//! file the mock serves, and token signing.

use std::path::PathBuf;
use std::process::Command;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::Value;

pub struct Idp {
    dir: PathBuf,
    pub jwks_path: PathBuf,
    pub hmac_secret: String,
    keys: Vec<(String, Algorithm, EncodingKey)>,
}

fn openssl(args: &[&str]) {
    let ok = Command::new("openssl").args(args).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok, "openssl {args:?} failed (is openssl installed?)");
}

impl Idp {
    pub fn new() -> Idp {
        let dir = std::env::temp_dir().join(format!("meridian-idp-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut idp = Idp { jwks_path: dir.join("jwks.json"), dir, hmac_secret: format!("hmac-{:032x}", rand::random::<u128>()), keys: Vec::new() };
        idp.add_key("rsa-1", Algorithm::RS256);
        idp.add_key("ec-1", Algorithm::ES256);
        idp.add_key("ed-1", Algorithm::EdDSA);
        idp.publish();
        idp
    }

    /// Generates a key under `kid` (not yet published).
    pub fn add_key(&mut self, kid: &str, alg: Algorithm) {
        let path = self.dir.join(format!("{kid}.pem"));
        let p = path.to_str().unwrap();
        match alg {
            Algorithm::RS256 => openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p]),
            Algorithm::ES256 => openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", p]),
            Algorithm::EdDSA => openssl(&["genpkey", "-algorithm", "ED25519", "-out", p]),
            other => panic!("unsupported {other:?}"),
        }
        let pem = std::fs::read(&path).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .unwrap();
        self.keys.retain(|(k, _, _)| k != kid);
        self.keys.push((kid.to_string(), alg, key));
    }

    /// Writes the JWKS with every current key; `except` leaves some out.
    pub fn publish_except(&self, except: &[&str]) {
        let keys = self
            .keys
            .iter()
            .filter(|(kid, _, _)| !except.contains(&kid.as_str()))
            .map(|(kid, alg, key)| {
                let mut j = Jwk::from_encoding_key(key, *alg).unwrap();
                j.common.key_id = Some(kid.clone());
                j
            })
            .collect();
        std::fs::write(&self.jwks_path, serde_json::to_vec(&JwkSet { keys }).unwrap()).unwrap();
    }

    pub fn publish(&self) {
        self.publish_except(&[]);
    }

    /// Signs `claims` with the key `kid` (its algorithm), naming `kid` in the header.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let (_, alg, key) = self.keys.iter().find(|(k, _, _)| k == kid).unwrap_or_else(|| panic!("no key {kid}"));
        let mut h = Header::new(*alg);
        h.kid = Some(kid.to_string());
        encode(&h, claims, key).unwrap()
    }

    pub fn sign_hs256(&self, claims: &Value) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(self.hmac_secret.as_bytes())).unwrap()
    }

    /// An HS256 token whose HMAC key is the RSA key's public JWKS entry: the classic
    /// algorithm-confusion forgery.
    pub fn forge_confused(&self, claims: &Value) -> String {
        let jwks = std::fs::read(&self.jwks_path).unwrap();
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("rsa-1".into());
        encode(&h, claims, &EncodingKey::from_secret(&jwks)).unwrap()
    }
}

impl Default for Idp {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
