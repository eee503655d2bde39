//! API keys as the admin API sees them: what a create, update or rotation may ask for,
//! checked whole before anything is stored (errors name the field), and the key as it
//! is shown — never its secret (only once, at creation) nor its digest.

use serde::{Deserialize, Serialize};

use crate::api::GatewayError;

pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_ROLES: usize = 16;
/// The longest lifetime a key may be given (5 years).
pub const MAX_EXPIRES_IN_S: u64 = 5 * 365 * 86_400;
/// How long a rotated key's previous secret keeps working, by default and at most.
pub const DEFAULT_OVERLAP_S: u64 = 3_600;
pub const MAX_OVERLAP_S: u64 = 7 * 86_400;
/// Page sizes of listings.
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

fn check_name(name: &str, field: &str) -> Result<(), GatewayError> {
    let ok = !name.is_empty() && name.chars().count() <= MAX_NAME_CHARS && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::invalid_param(format!("`{field}` must be 1 to {MAX_NAME_CHARS} characters of letters, digits, '.', '_' or '-'"), field))
    }
}

fn check_roles(roles: &[String], known: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
    if roles.len() > MAX_ROLES {
        return Err(GatewayError::invalid_param(format!("at most {MAX_ROLES} roles"), "roles"));
    }
    for (i, r) in roles.iter().enumerate() {
        if !known(r) {
            return Err(GatewayError::invalid_param(format!("no role named {r:?}"), format!("roles[{i}]")));
        }
    }
    Ok(())
}

fn check_expiry(s: Option<u64>) -> Result<(), GatewayError> {
    match s {
        Some(s) if s > MAX_EXPIRES_IN_S => Err(GatewayError::invalid_param(format!("`expires_in_s` must be at most {MAX_EXPIRES_IN_S} (5 years); 0 means never"), "expires_in_s")),
        _ => Ok(()),
    }
}

/// `POST /v1/admin/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    /// Roles of the key; absent: limited only by the tenant.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Seconds until it expires; absent or 0: never.
    #[serde(default)]
    pub expires_in_s: Option<u64>,
}

impl CreateKey {
    pub fn validate(&self, known_role: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
        check_name(&self.name, "name")?;
        check_roles(self.roles.as_deref().unwrap_or_default(), known_role)?;
        check_expiry(self.expires_in_s)
    }
}

/// `PATCH /v1/admin/keys/{id}`: the fields given are changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Seconds from now until it expires; 0: never.
    #[serde(default)]
    pub expires_in_s: Option<u64>,
}

impl UpdateKey {
    pub fn validate(&self, known_role: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
        if self.name.is_none() && self.roles.is_none() && self.expires_in_s.is_none() {
            return Err(GatewayError::invalid("nothing to change: give `name`, `roles` or `expires_in_s`"));
        }
        if let Some(n) = &self.name {
            check_name(n, "name")?;
        }
        if let Some(r) = &self.roles {
            check_roles(r, known_role)?;
        }
        check_expiry(self.expires_in_s)
    }
}

/// `POST /v1/admin/keys/{id}/rotate`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Seconds the previous secret keeps working; default 3,600, at most 7 days, 0: none.
    #[serde(default)]
    pub overlap_s: Option<u64>,
}

impl RotateKey {
    pub fn overlap(&self) -> Result<u64, GatewayError> {
        match self.overlap_s.unwrap_or(DEFAULT_OVERLAP_S) {
            s if s > MAX_OVERLAP_S => Err(GatewayError::invalid_param(format!("`overlap_s` must be at most {MAX_OVERLAP_S} (7 days)"), "overlap_s")),
            s => Ok(s),
        }
    }
}

/// A key as the admin API shows it. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyView {
    pub id: String,
    pub object: String,
    pub name: String,
    /// The first characters of the secret, to recognise it by.
    pub prefix: String,
    pub roles: Option<Vec<String>>,
    /// `admin` (issued through this API) or `config` (from the operators' YAML; read-only here).
    pub source: String,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// Bumped by every change; the `ETag`.
    pub version: i64,
}

impl KeyView {
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// Whether an `If-Match` header value names `version` (a list, `*`, weak or strong tags).
pub fn if_match(header: &str, version: i64) -> bool {
    header.split(',').map(|t| t.trim().trim_start_matches("W/").trim_matches('"')).any(|t| t == "*" || t == version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(r: &str) -> bool {
        ["tenant-admin", "chat"].contains(&r)
    }

    fn param(e: GatewayError) -> Option<String> {
        match e {
            GatewayError::InvalidRequest { param, .. } => param,
            _ => None,
        }
    }

    #[test]
    fn creates_are_checked_whole_and_errors_name_the_field() {
        let ok = CreateKey { name: "ci-deploy".into(), roles: Some(vec!["chat".into()]), expires_in_s: Some(86_400) };
        assert!(ok.validate(&known).is_ok());
        let bad = |c: CreateKey| param(c.validate(&known).unwrap_err());
        assert_eq!(bad(CreateKey { name: "".into(), ..ok.clone() }), Some("name".into()));
        assert_eq!(bad(CreateKey { name: "has space".into(), ..ok.clone() }), Some("name".into()));
        assert_eq!(bad(CreateKey { name: "x".repeat(65), ..ok.clone() }), Some("name".into()));
        assert_eq!(bad(CreateKey { roles: Some(vec!["chat".into(), "ghost".into()]), ..ok.clone() }), Some("roles[1]".into()));
        assert_eq!(bad(CreateKey { expires_in_s: Some(MAX_EXPIRES_IN_S + 1), ..ok.clone() }), Some("expires_in_s".into()));
        assert!(serde_json::from_str::<CreateKey>(r#"{"name":"a","secret":"mine"}"#).is_err(), "unknown fields are refused");
    }

    #[test]
    fn updates_and_rotations() {
        assert!(UpdateKey::default().validate(&known).is_err(), "an empty patch");
        assert!(UpdateKey { roles: Some(vec![]), ..Default::default() }.validate(&known).is_ok());
        assert_eq!(RotateKey::default().overlap().unwrap(), DEFAULT_OVERLAP_S);
        assert_eq!(param(RotateKey { overlap_s: Some(MAX_OVERLAP_S + 1) }.overlap().unwrap_err()), Some("overlap_s".into()));
    }

    #[test]
    fn if_match_reads_every_form() {
        assert!(if_match("\"3\"", 3) && if_match("W/\"3\"", 3) && if_match("\"1\", \"3\"", 3) && if_match("*", 3));
        assert!(!if_match("\"2\"", 3));
    }
}
