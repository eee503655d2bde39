//! Role-based access: roles name the routes and models they allow. A principal with no
//! roles (an API key configured without any) is limited only by its tenant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The families of endpoints roles can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteClass {
    Chat,
    Embeddings,
    Models,
    Rag,
    Chains,
    Media,
    Admin,
}

impl RouteClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Chat => "chat",
            RouteClass::Embeddings => "embeddings",
            RouteClass::Models => "models",
            RouteClass::Rag => "rag",
            RouteClass::Chains => "chains",
            RouteClass::Media => "media",
            RouteClass::Admin => "admin",
        }
    }

    /// Classifies a request path. Work a Worker cannot do (RAG, chains, media) and
    /// tenant data (admin) belong to the tenant's home region.
    pub fn of_path(path: &str) -> Option<RouteClass> {
        let p = path.trim_end_matches('/');
        Some(match p {
            "/v1/chat/completions" => RouteClass::Chat,
            "/v1/embeddings" => RouteClass::Embeddings,
            "/v1/models" => RouteClass::Models,
            _ if p.starts_with("/v1/chatbots") || p.starts_with("/v1/knowledge-bases") || p.starts_with("/v1/rag") => RouteClass::Rag,
            _ if p.starts_with("/v1/chains") => RouteClass::Chains,
            _ if p.starts_with("/v1/images") || p.starts_with("/v1/audio") || p.starts_with("/v1/videos") || p.starts_with("/v1/jobs") => RouteClass::Media,
            _ if p.starts_with("/v1/admin") || p == "/v1/graphql" => RouteClass::Admin,
            _ => return None,
        })
    }

    /// Whether this route is served by the tenant's home region rather than the edge.
    pub fn is_regional(self) -> bool {
        matches!(self, RouteClass::Rag | RouteClass::Chains | RouteClass::Media | RouteClass::Admin)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Model aliases, or `*`.
    #[serde(default = "everything")]
    pub models: Vec<String>,
    /// Route classes (`chat`, `embeddings`, `models`, `rag`, `chains`, `media`, `admin`), or `*`.
    #[serde(default = "everything")]
    pub routes: Vec<String>,
}

fn everything() -> Vec<String> {
    vec!["*".into()]
}

fn listed(list: &[String], item: &str) -> bool {
    list.iter().any(|x| x == "*" || x == item)
}

/// Built-in role: administers its tenant (keys, and later users, limits, budgets) and
/// may use every route and model the tenant may.
pub const TENANT_ADMIN: &str = "tenant-admin";
/// Built-in role: reads its tenant's admin data (usage, keys without secrets), changes nothing.
pub const TENANT_VIEWER: &str = "tenant-viewer";

/// A role by name: the config's table first, then the built-in roles.
fn role<'a>(table: &'a BTreeMap<String, RoleConfig>, name: &str) -> Option<std::borrow::Cow<'a, RoleConfig>> {
    if let Some(r) = table.get(name) {
        return Some(std::borrow::Cow::Borrowed(r));
    }
    match name {
        TENANT_ADMIN => Some(std::borrow::Cow::Owned(RoleConfig { models: everything(), routes: everything() })),
        TENANT_VIEWER => Some(std::borrow::Cow::Owned(RoleConfig { models: Vec::new(), routes: vec!["admin".into(), "models".into()] })),
        _ => None,
    }
}

/// Whether `name` is a role: one of the config's, or built in.
pub fn role_exists(table: &BTreeMap<String, RoleConfig>, name: &str) -> bool {
    role(table, name).is_some()
}

/// `roles: None` means unrestricted by roles. Unknown role names grant nothing.
pub fn roles_allow(roles: Option<&[String]>, table: &BTreeMap<String, RoleConfig>, route: RouteClass, model: Option<&str>) -> bool {
    let Some(roles) = roles else { return true };
    roles.iter().filter_map(|r| role(table, r)).any(|rc| listed(&rc.routes, route.as_str()) && model.is_none_or(|m| listed(&rc.models, m)))
}

/// What a caller may do with its tenant's admin objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminAccess {
    None,
    Read,
    Write,
}

/// Changing admin objects needs the `tenant-admin` role explicitly (a key without roles
/// is an application's, and must not mint keys if it leaks); reading needs any role that
/// allows admin routes, or no roles at all.
pub fn admin_access(roles: Option<&[String]>, table: &BTreeMap<String, RoleConfig>) -> AdminAccess {
    if roles.is_some_and(|r| r.iter().any(|x| x == TENANT_ADMIN)) {
        AdminAccess::Write
    } else if roles_allow(roles, table, RouteClass::Admin, None) {
        AdminAccess::Read
    } else {
        AdminAccess::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_routes_and_models() {
        let mut t = BTreeMap::new();
        t.insert("chat".to_string(), RoleConfig { models: vec!["small".into()], routes: vec!["chat".into(), "models".into()] });
        t.insert("admin".to_string(), RoleConfig { models: everything(), routes: everything() });
        let chat = vec!["chat".to_string()];
        assert!(roles_allow(Some(&chat), &t, RouteClass::Chat, Some("small")));
        assert!(!roles_allow(Some(&chat), &t, RouteClass::Chat, Some("big")));
        let admin = vec![TENANT_ADMIN.to_string()];
        let viewer = vec![TENANT_VIEWER.to_string()];
        assert!(roles_allow(Some(&admin), &t, RouteClass::Chat, Some("big")), "built-in tenant admin");
        assert!(roles_allow(Some(&viewer), &t, RouteClass::Admin, None) && !roles_allow(Some(&viewer), &t, RouteClass::Chat, Some("small")));
        assert_eq!(admin_access(Some(&admin), &t), AdminAccess::Write);
        assert_eq!(admin_access(Some(&viewer), &t), AdminAccess::Read);
        assert_eq!(admin_access(None, &t), AdminAccess::Read, "an unrestricted application key reads, never writes");
        assert_eq!(admin_access(Some(&chat), &t), AdminAccess::None);
        assert!(!roles_allow(Some(&chat), &t, RouteClass::Admin, None));
        assert!(roles_allow(Some(&["admin".to_string()]), &t, RouteClass::Admin, None));
        assert!(!roles_allow(Some(&["ghost".to_string()]), &t, RouteClass::Chat, Some("small")));
        assert!(roles_allow(None, &t, RouteClass::Admin, None));
        assert_eq!(RouteClass::of_path("/v1/chatbots/x/chat"), Some(RouteClass::Rag));
        assert!(RouteClass::of_path("/v1/jobs/1").unwrap().is_regional());
        assert!(!RouteClass::of_path("/v1/chat/completions").unwrap().is_regional());
    }
}
