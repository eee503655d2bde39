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
            _ if p.starts_with("/v1/admin") => RouteClass::Admin,
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

/// `roles: None` means unrestricted by roles. Unknown role names grant nothing.
pub fn roles_allow(roles: Option<&[String]>, table: &BTreeMap<String, RoleConfig>, route: RouteClass, model: Option<&str>) -> bool {
    let Some(roles) = roles else { return true };
    roles.iter().filter_map(|r| table.get(r)).any(|rc| listed(&rc.routes, route.as_str()) && model.is_none_or(|m| listed(&rc.models, m)))
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
        assert!(!roles_allow(Some(&chat), &t, RouteClass::Admin, None));
        assert!(roles_allow(Some(&["admin".to_string()]), &t, RouteClass::Admin, None));
        assert!(!roles_allow(Some(&["ghost".to_string()]), &t, RouteClass::Chat, Some("small")));
        assert!(roles_allow(None, &t, RouteClass::Admin, None));
        assert_eq!(RouteClass::of_path("/v1/chatbots/x/chat"), Some(RouteClass::Rag));
        assert!(RouteClass::of_path("/v1/jobs/1").unwrap().is_regional());
        assert!(!RouteClass::of_path("/v1/chat/completions").unwrap().is_regional());
    }
}
