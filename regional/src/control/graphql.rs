//! `POST /v1/graphql`: the admin API's second shape, over the same service layer as REST
//! ([`super::keys::KeyStore`], [`super::audit`], the usage rollups) with the same
//! authorisation. Guarded against expensive queries: depth ≤ 8, complexity ≤ 100 (a field counts 1), at most
//! 20 aliased fields, no batches, introspection only with `control.graphql_introspection`.
//! Errors carry the REST error's `code` and `status` in `extensions`. The schema's SDL is
//! checked into `docs/schema.graphql` (a test compares it).

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Context, EmptySubscription, Enum, ErrorExtensions, InputObject, Object, Schema, SimpleObject, ID};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use meridian_shared::api::GatewayError;
use meridian_shared::auth::{admin_access, role_exists, AdminAccess, Principal, TENANT_ADMIN};
use meridian_shared::control::keys::{CreateKey, KeyView, RotateKey, UpdateKey, MAX_PAGE};

use super::keys::{Actor, Issued, KeyStore};
use crate::http::body;
use crate::http::caller::Caller;
use crate::http::error::ApiError;
use crate::state::SharedState;
use crate::usage::rollup::{self, GroupBy};

pub const MAX_DEPTH: usize = 8;
pub const MAX_COMPLEXITY: usize = 100;
pub const MAX_ALIASES: usize = 20;
const MAX_BODY: usize = 64 * 1024;

pub type AdminSchema = Schema<Query, Mutation, EmptySubscription>;

pub fn schema(introspection: bool) -> AdminSchema {
    let b = Schema::build(Query, Mutation, EmptySubscription).limit_depth(MAX_DEPTH).limit_complexity(MAX_COMPLEXITY);
    if introspection { b.finish() } else { b.disable_introspection().finish() }
}

/// What every resolver knows: the state, the caller, the request id.
struct Caller_ {
    st: SharedState,
    p: Principal,
    request_id: Option<String>,
}

fn gql(e: GatewayError) -> async_graphql::Error {
    let env = e.envelope();
    let status = e.status();
    async_graphql::Error::new(e.to_string()).extend_with(|_, x| {
        x.set("status", status);
        if let Some(c) = &env.error.code {
            x.set("code", c.clone());
        }
        if let Some(p) = &env.error.param {
            x.set("param", p.clone());
        }
    })
}

fn caller<'a>(ctx: &'a Context<'_>, need: AdminAccess) -> async_graphql::Result<(&'a Caller_, KeyStore<'a>)> {
    let c = ctx.data::<Caller_>()?;
    if admin_access(c.p.roles.as_deref(), &c.st.config.roles) < need {
        return Err(gql(GatewayError::Forbidden(format!("this caller may not {} the tenant's admin objects (that needs the {TENANT_ADMIN} role)", if need == AdminAccess::Write { "change" } else { "read" }))));
    }
    let dp = c.st.data.as_deref().ok_or_else(|| gql(GatewayError::Unavailable("this region has no data plane configured".into())))?;
    Ok((c, KeyStore { db: &dp.db, region: c.st.config.server.region }))
}

fn actor(c: &Caller_) -> Actor {
    Actor { tenant: c.p.tenant.clone(), name: format!("key:{}", c.p.key_name), request_id: c.request_id.clone() }
}

/// An API key (never its secret or digest).
pub struct ApiKey(KeyView);

#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    async fn roles(&self) -> Option<&Vec<String>> {
        self.0.roles.as_ref()
    }
    /// `admin` (issued through the API) or `config`.
    async fn source(&self) -> &str {
        &self.0.source
    }
    async fn created_at(&self) -> i64 {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn expires_at(&self) -> Option<i64> {
        self.0.expires_at
    }
    async fn revoked_at(&self) -> Option<i64> {
        self.0.revoked_at
    }
    /// The version `ifMatch` names.
    async fn version(&self) -> i64 {
        self.0.version
    }
}

/// A key just issued or rotated, with its secret — the only time it is shown.
#[derive(SimpleObject)]
pub struct IssuedKey {
    key: ApiKey,
    secret: Option<String>,
    replayed: bool,
}

impl From<Issued> for IssuedKey {
    fn from(i: Issued) -> Self {
        IssuedKey { key: ApiKey(i.key), secret: i.secret, replayed: i.replayed }
    }
}

#[derive(SimpleObject)]
pub struct KeyPage {
    nodes: Vec<ApiKey>,
    has_more: bool,
    next_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct AuditRecord {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    object_type: String,
    object_id: String,
    before_digest: Option<String>,
    after_digest: Option<String>,
    request_id: Option<String>,
    prev_hash: String,
    hash: String,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    Day,
    Hour,
    Model,
    Feature,
    User,
}

#[derive(SimpleObject)]
pub struct UsageRow {
    key: String,
    requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    cost_usd: f64,
    saved_usd: f64,
    cache_hits: i64,
    interrupted: i64,
}

pub struct Query;

#[Object]
impl Query {
    /// The tenant's keys, newest first.
    async fn keys(&self, ctx: &Context<'_>, #[graphql(default = 20)] first: i32, after: Option<String>) -> async_graphql::Result<KeyPage> {
        let (c, store) = caller(ctx, AdminAccess::Read)?;
        if first < 1 || first as usize > MAX_PAGE {
            return Err(gql(GatewayError::invalid_param(format!("`first` must be 1 to {MAX_PAGE}"), "first")));
        }
        let (keys, more) = store.list(&c.p.tenant, after.as_deref(), first as usize).await.map_err(gql)?;
        let next_cursor = if more { keys.last().map(|k| k.id.clone()) } else { None };
        Ok(KeyPage { nodes: keys.into_iter().map(ApiKey).collect(), has_more: more, next_cursor })
    }

    async fn key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<ApiKey>> {
        let (c, store) = caller(ctx, AdminAccess::Read)?;
        match store.get(&c.p.tenant, &id).await {
            Ok(k) => Ok(Some(ApiKey(k))),
            Err(GatewayError::ResourceNotFound(_)) => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }

    /// The tenant's audit records, newest first, before `before` (a `seq`).
    async fn audit(&self, ctx: &Context<'_>, #[graphql(default = 20)] first: i32, before: Option<i64>) -> async_graphql::Result<Vec<AuditRecord>> {
        let (c, store) = caller(ctx, AdminAccess::Read)?;
        if first < 1 || first as usize > MAX_PAGE {
            return Err(gql(GatewayError::invalid_param(format!("`first` must be 1 to {MAX_PAGE}"), "first")));
        }
        let records = super::audit::page(store.db, &c.p.tenant, before, first as i64).await.map_err(|_| gql(GatewayError::Unavailable("the audit log is unavailable; try again".into())))?;
        Ok(records
            .into_iter()
            .map(|r| AuditRecord { seq: r.seq, at: r.at, actor: r.actor, action: r.action, object_type: r.object_type, object_id: r.object_id, before_digest: r.before_digest, after_digest: r.after_digest, request_id: r.request_id, prev_hash: r.prev_hash, hash: r.hash })
            .collect())
    }

    /// The tenant's usage from the rollups (Unix seconds; default the last 30 days).
    async fn usage(&self, ctx: &Context<'_>, start_time: Option<i64>, end_time: Option<i64>, #[graphql(default_with = "UsageGroup::Day")] group_by: UsageGroup, #[graphql(default = 100)] limit: i64) -> async_graphql::Result<Vec<UsageRow>> {
        let (c, store) = caller(ctx, AdminAccess::Read)?;
        let end = end_time.unwrap_or_else(|| crate::clock::unix_secs() as i64 + 1);
        let start = start_time.unwrap_or(end - 30 * 86_400);
        let by = match group_by {
            UsageGroup::Day => GroupBy::Day,
            UsageGroup::Hour => GroupBy::Hour,
            UsageGroup::Model => GroupBy::Model,
            UsageGroup::Feature => GroupBy::Feature,
            UsageGroup::User => GroupBy::User,
        };
        let rows = rollup::summary(store.db, &c.p.tenant, start, end, by, limit).await.map_err(gql)?;
        Ok(rows
            .into_iter()
            .map(|r| UsageRow {
                key: r.key,
                requests: r.counters.requests,
                prompt_tokens: r.counters.prompt_tokens,
                completion_tokens: r.counters.completion_tokens,
                cached_tokens: r.counters.cached_tokens,
                cost_usd: r.cost_usd,
                saved_usd: r.counters.saved_micro_usd as f64 / 1e6,
                cache_hits: r.counters.cache_hits,
                interrupted: r.counters.interrupted,
            })
            .collect())
    }
}

#[derive(InputObject)]
pub struct CreateKeyInput {
    name: String,
    roles: Option<Vec<String>>,
    expires_in_s: Option<u64>,
}

#[derive(InputObject)]
pub struct UpdateKeyInput {
    name: Option<String>,
    roles: Option<Vec<String>>,
    expires_in_s: Option<u64>,
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Issues a key; its secret is in the answer, once.
    async fn create_key(&self, ctx: &Context<'_>, input: CreateKeyInput, idempotency_key: Option<String>) -> async_graphql::Result<IssuedKey> {
        let (c, store) = caller(ctx, AdminAccess::Write)?;
        let req = CreateKey { name: input.name, roles: input.roles, expires_in_s: input.expires_in_s };
        req.validate(&|r| role_exists(&c.st.config.roles, r)).map_err(gql)?;
        let issued = store.create(&actor(c), &req, idempotency_key.as_deref(), rand::random()).await.map_err(gql)?;
        Ok(issued.into())
    }

    /// Changes a key; `ifMatch` is its current `version`.
    async fn update_key(&self, ctx: &Context<'_>, id: ID, if_match: i64, input: UpdateKeyInput) -> async_graphql::Result<ApiKey> {
        let (c, store) = caller(ctx, AdminAccess::Write)?;
        let patch = UpdateKey { name: input.name, roles: input.roles, expires_in_s: input.expires_in_s };
        patch.validate(&|r| role_exists(&c.st.config.roles, r)).map_err(gql)?;
        let k = store.update(&actor(c), &id, &patch, Some(&if_match.to_string())).await.map_err(gql)?;
        c.st.resolver.forget();
        Ok(ApiKey(k))
    }

    async fn revoke_key(&self, ctx: &Context<'_>, id: ID, if_match: Option<i64>) -> async_graphql::Result<ApiKey> {
        let (c, store) = caller(ctx, AdminAccess::Write)?;
        let k = store.revoke(&actor(c), &id, if_match.map(|v| v.to_string()).as_deref()).await.map_err(gql)?;
        c.st.resolver.forget();
        Ok(ApiKey(k))
    }

    /// A new secret; the previous one works for `overlapS` seconds (default 3,600).
    async fn rotate_key(&self, ctx: &Context<'_>, id: ID, overlap_s: Option<u64>, if_match: Option<i64>) -> async_graphql::Result<IssuedKey> {
        let (c, store) = caller(ctx, AdminAccess::Write)?;
        let issued = store.rotate(&actor(c), &id, &RotateKey { overlap_s }, if_match.map(|v| v.to_string()).as_deref(), rand::random()).await.map_err(gql)?;
        c.st.resolver.forget();
        Ok(issued.into())
    }
}

fn aliases(set: &SelectionSet, doc: &ExecutableDocument, depth: usize) -> usize {
    if depth > MAX_DEPTH * 2 {
        return 0;
    }
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node, doc, depth + 1),
            Selection::InlineFragment(i) => aliases(&i.node.selection_set.node, doc, depth + 1),
            Selection::FragmentSpread(fs) => doc.fragments.get(&fs.node.fragment_name.node).map_or(0, |f| aliases(&f.node.selection_set.node, doc, depth + 1)),
        })
        .sum()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GraphqlRequest {
    query: String,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

pub async fn handle(State(st): State<SharedState>, c: Caller, req: Request) -> Response {
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let result = async {
        let bytes = body::read_body(req.into_body(), MAX_BODY).await?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::from(GatewayError::invalid("batched GraphQL requests are not accepted: send one operation per request")));
        }
        let g: GraphqlRequest = body::parse_json(&bytes)?;
        if let Ok(doc) = async_graphql::parser::parse_query(&g.query) {
            let n: usize = doc.operations.iter().map(|(_, op)| aliases(&op.node.selection_set.node, &doc, 0)).sum();
            if n > MAX_ALIASES {
                return Err(GatewayError::invalid(format!("the query uses {n} aliases; at most {MAX_ALIASES} are accepted")).into());
            }
        }
        let mut r = async_graphql::Request::new(g.query).data(Caller_ { st: st.clone(), p: c.0, request_id });
        if let Some(v) = g.variables {
            r = r.variables(async_graphql::Variables::from_json(v));
        }
        if let Some(op) = g.operation_name {
            r = r.operation_name(op);
        }
        Ok::<_, ApiError>(st.graphql.execute(r).await)
    }
    .await;
    match result {
        Ok(resp) => Json(resp).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    /// The schema as checked into docs/schema.graphql: a change to the API is a change
    /// to that file too (`meridian-regional graphql-schema > docs/schema.graphql`).
    #[test]
    fn the_sdl_in_the_repository_is_the_schema() {
        let sdl = super::schema(true).sdl();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema.graphql");
        let stored = std::fs::read_to_string(path).unwrap_or_default();
        assert!(stored == sdl, "docs/schema.graphql is out of date: run `meridian-regional graphql-schema > docs/schema.graphql`");
    }
}
