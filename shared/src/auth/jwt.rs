//! JWT verification policy: which algorithms, keys, issuers and audiences are accepted,
//! and which claims name the tenant, user and roles. Signature math is jsonwebtoken's
//! (pure Rust, runs in workerd); time checks use the host's clock, passed in.
//!
//! Rejected, each with its own message: `alg: none`, algorithms outside the policy,
//! algorithm confusion (an HMAC token can only be checked with the HMAC secret, an
//! asymmetric one only with a JWKS key of the same family and `alg`), unknown `kid`,
//! bad signature, expired, not yet valid, wrong issuer or audience, malformed tokens.

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
pub use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("tokens with alg \"none\" are not accepted")]
    AlgNone,
    #[error("algorithm {0} is not accepted")]
    AlgNotAllowed(String),
    #[error("no key with kid {0:?} is known")]
    UnknownKid(String),
    #[error("no key matches this token's algorithm {0}")]
    NoKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
}

/// The accepted algorithms, by their JOSE names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlg {
    fn parse(s: &str) -> Option<JwtAlg> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }

    fn algorithm(self) -> Algorithm {
        match self {
            JwtAlg::HS256 => Algorithm::HS256,
            JwtAlg::HS384 => Algorithm::HS384,
            JwtAlg::HS512 => Algorithm::HS512,
            JwtAlg::RS256 => Algorithm::RS256,
            JwtAlg::RS384 => Algorithm::RS384,
            JwtAlg::RS512 => Algorithm::RS512,
            JwtAlg::PS256 => Algorithm::PS256,
            JwtAlg::ES256 => Algorithm::ES256,
            JwtAlg::ES384 => Algorithm::ES384,
            JwtAlg::EdDSA => Algorithm::EdDSA,
        }
    }

    fn is_hmac(self) -> bool {
        matches!(self, JwtAlg::HS256 | JwtAlg::HS384 | JwtAlg::HS512)
    }
}

/// The `jwt` section of the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Accepted `aud` values (a token must carry one of them).
    pub audience: Vec<String>,
    #[serde(default = "default_algs")]
    pub algorithms: Vec<JwtAlg>,
    /// Env var (Worker secret) holding the HMAC secret, for HS* tokens.
    #[serde(default)]
    pub hmac_secret_env: Option<String>,
    /// Where to fetch the JWKS for asymmetric tokens.
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default = "default_jwks_ttl")]
    pub jwks_cache_secs: u64,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
}

fn default_algs() -> Vec<JwtAlg> {
    vec![JwtAlg::RS256, JwtAlg::ES256, JwtAlg::EdDSA]
}
fn default_jwks_ttl() -> u64 {
    300
}
fn default_leeway() -> u64 {
    30
}
fn default_tenant_claim() -> String {
    "tenant".into()
}
fn default_roles_claim() -> String {
    "roles".into()
}

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    pub subject: String,
    pub tenant: String,
    pub roles: Vec<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Reads the header without trusting it: the algorithm and key id.
fn peek_header(token: &str) -> Result<Header, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("a JWT has three dot-separated parts".into()));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed("header is not base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed("header is not JSON".into()))
}

/// A JWKS miss refetches at most this often, so random `kid`s cannot flood the IdP.
pub const JWKS_MIN_REFRESH_MS: u64 = 10_000;

/// A host's copy of the issuer's JWKS and when it was fetched.
#[derive(Debug, Clone)]
pub struct CachedJwks {
    pub set: JwkSet,
    pub fetched_ms: u64,
}

impl CachedJwks {
    /// Whether this copy may verify `token` at `now_ms`: fresh (within `ttl_ms`), and it
    /// knows the token's `kid` — or an unknown `kid` was refetched too recently to ask
    /// again (key rotation is picked up within [`JWKS_MIN_REFRESH_MS`]).
    pub fn serves(&self, token: &str, now_ms: u64, ttl_ms: u64) -> bool {
        let age = now_ms.saturating_sub(self.fetched_ms);
        let has_kid = token_kid(token).as_deref().is_none_or(|k| self.set.find(k).is_some());
        age < ttl_ms && (has_kid || age < JWKS_MIN_REFRESH_MS)
    }
}

/// The key id a token names, for hosts that refresh their JWKS on an unknown `kid`.
pub fn token_kid(token: &str) -> Option<String> {
    peek_header(token).ok().and_then(|h| h.kid)
}

fn key_for(alg: JwtAlg, kid: Option<&str>, hmac: Option<&[u8]>, jwks: Option<&JwkSet>) -> Result<DecodingKey, JwtError> {
    if alg.is_hmac() {
        return hmac.map(DecodingKey::from_secret).ok_or_else(|| JwtError::NoKey(format!("{alg:?}")));
    }
    let jwks = jwks.ok_or_else(|| JwtError::NoKey(format!("{alg:?}")))?;
    let candidates: Vec<&Jwk> = match kid {
        Some(k) => {
            let found: Vec<&Jwk> = jwks.keys.iter().filter(|j| j.common.key_id.as_deref() == Some(k)).collect();
            if found.is_empty() {
                return Err(JwtError::UnknownKid(k.to_string()));
            }
            found
        }
        None => jwks.keys.iter().collect(),
    };
    candidates
        .into_iter()
        // A JWK that declares its algorithm is only used for that algorithm.
        .filter(|j| j.common.key_algorithm.is_none_or(|ka| format!("{ka:?}") == format!("{alg:?}")))
        .find_map(|j| {
            let key = DecodingKey::from_jwk(j).ok()?;
            // jsonwebtoken refuses a key whose family does not match the algorithm.
            Some(key).filter(|_| family_matches(alg, j))
        })
        .ok_or_else(|| JwtError::NoKey(format!("{alg:?}")))
}

fn family_matches(alg: JwtAlg, j: &Jwk) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    matches!(
        (alg, &j.algorithm),
        (JwtAlg::RS256 | JwtAlg::RS384 | JwtAlg::RS512 | JwtAlg::PS256, P::RSA(_)) | (JwtAlg::ES256 | JwtAlg::ES384, P::EllipticCurve(_)) | (JwtAlg::EdDSA, P::OctetKeyPair(_))
    )
}

fn claim_str<'a>(claims: &'a Value, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// Verifies `token` at `now_s` (Unix seconds).
pub fn verify(token: &str, cfg: &JwtConfig, hmac_secret: Option<&[u8]>, jwks: Option<&JwkSet>, now_s: u64) -> Result<VerifiedClaims, JwtError> {
    let header = peek_header(token)?;
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(JwtError::AlgNone);
    }
    let alg = JwtAlg::parse(&header.alg).filter(|a| cfg.algorithms.contains(a)).ok_or_else(|| JwtError::AlgNotAllowed(header.alg.clone()))?;
    let key = key_for(alg, header.kid.as_deref(), hmac_secret, jwks)?;
    let mut v = Validation::new(alg.algorithm());
    // Time, issuer and audience are checked below with the host's clock.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::BadSignature,
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => JwtError::NoKey(format!("{alg:?}")),
        _ => JwtError::Malformed(e.to_string()),
    })?;
    let c = data.claims;
    let leeway = cfg.leeway_secs;
    let exp = c.get("exp").and_then(Value::as_u64).ok_or(JwtError::MissingClaim("exp"))?;
    if now_s > exp + leeway {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = c.get("nbf").and_then(Value::as_u64) {
        if now_s + leeway < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    if claim_str(&c, "iss") != Some(cfg.issuer.as_str()) {
        return Err(JwtError::WrongIssuer);
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => cfg.audience.contains(a),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(|x| cfg.audience.iter().any(|y| y == x)),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::WrongAudience);
    }
    let tenant = claim_str(&c, &cfg.tenant_claim).ok_or(JwtError::MissingClaim("tenant"))?.to_string();
    let subject = claim_str(&c, "sub").ok_or(JwtError::MissingClaim("sub"))?.to_string();
    let roles = c.get(&cfg.roles_claim).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
    Ok(VerifiedClaims { subject, tenant, roles })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header as JHeader};
    use serde_json::json;

    const SECRET: &[u8] = b"a-test-hmac-secret-of-enough-length";

    fn cfg() -> JwtConfig {
        JwtConfig {
            issuer: "https://idp.test".into(),
            audience: vec!["meridian".into()],
            algorithms: vec![JwtAlg::HS256, JwtAlg::RS256, JwtAlg::ES256, JwtAlg::EdDSA],
            hmac_secret_env: None,
            jwks_url: None,
            jwks_cache_secs: 300,
            leeway_secs: 30,
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
        }
    }

    fn claims(now: u64) -> Value {
        json!({"iss": "https://idp.test", "aud": "meridian", "sub": "u1", "tenant": "t1", "roles": ["chat"], "exp": now + 600, "nbf": now - 10})
    }

    fn hs(c: &Value) -> String {
        encode(&JHeader::new(Algorithm::HS256), c, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    #[test]
    fn hs256_accepts_and_maps_claims() {
        let now = 1_800_000_000;
        let v = verify(&hs(&claims(now)), &cfg(), Some(SECRET), None, now).unwrap();
        assert_eq!(v, VerifiedClaims { subject: "u1".into(), tenant: "t1".into(), roles: vec!["chat".into()] });
    }

    #[test]
    fn rejections() {
        let now = 1_800_000_000;
        let c = cfg();
        let check = |token: &str| verify(token, &c, Some(SECRET), None, now).unwrap_err();
        let mut exp = claims(now);
        exp["exp"] = json!(now - 31);
        assert_eq!(check(&hs(&exp)), JwtError::Expired);
        let mut within = claims(now);
        within["exp"] = json!(now - 29);
        assert!(verify(&hs(&within), &c, Some(SECRET), None, now).is_ok(), "leeway");
        let mut nbf = claims(now);
        nbf["nbf"] = json!(now + 100);
        assert_eq!(check(&hs(&nbf)), JwtError::NotYetValid);
        let mut aud = claims(now);
        aud["aud"] = json!(["other"]);
        assert_eq!(check(&hs(&aud)), JwtError::WrongAudience);
        let mut iss = claims(now);
        iss["iss"] = json!("https://evil");
        assert_eq!(check(&hs(&iss)), JwtError::WrongIssuer);
        let forged = encode(&JHeader::new(Algorithm::HS256), &claims(now), &EncodingKey::from_secret(b"wrong")).unwrap();
        assert_eq!(check(&forged), JwtError::BadSignature);
        assert!(matches!(check("abc"), JwtError::Malformed(_)));
        assert!(matches!(check("a.b.c"), JwtError::Malformed(_)));
        // alg none, however spelled.
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(now)));
        assert_eq!(check(&none), JwtError::AlgNone);
        let none2 = format!("{}.{}.", b64(&json!({"alg": "NoNe"})), b64(&claims(now)));
        assert_eq!(check(&none2), JwtError::AlgNone);
        let hs512 = encode(&JHeader::new(Algorithm::HS512), &claims(now), &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(check(&hs512), JwtError::AlgNotAllowed("HS512".into()));
        // Asymmetric token with no JWKS configured: no key, never the HMAC secret.
        let rs = format!("{}.{}.{}", b64(&json!({"alg": "RS256", "kid": "k1"})), b64(&claims(now)), "c2ln");
        assert!(matches!(check(&rs), JwtError::NoKey(_)));
        let mut no_tenant = claims(now);
        no_tenant.as_object_mut().unwrap().remove("tenant");
        assert_eq!(check(&hs(&no_tenant)), JwtError::MissingClaim("tenant"));
    }
}
