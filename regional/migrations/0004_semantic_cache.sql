-- The regions' semantic response cache: a tenant's cached answers keyed by scope (see
-- meridian_shared::cache::semantic), with the last user turn's embedding. Question and
-- answer are sealed with the tenant's data key; rows expire; RLS like every tenant table.
CREATE TABLE semantic_cache (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    scope       text NOT NULL,
    question_enc bytea NOT NULL,
    answer_enc  bytea NOT NULL,
    embedding   vector(384) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    hits        bigint NOT NULL DEFAULT 0
);
CREATE INDEX semantic_cache_embedding ON semantic_cache USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX semantic_cache_scope ON semantic_cache (tenant_id, scope);
CREATE INDEX semantic_cache_expiry ON semantic_cache (expires_at);
ALTER TABLE semantic_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE semantic_cache FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON semantic_cache
    USING (tenant_id = current_setting('meridian.tenant', true))
    WITH CHECK (tenant_id = current_setting('meridian.tenant', true));
