-- Usage rollups: what usage reports read instead of raw events — per tenant, hour,
-- model, feature and user, updated as events arrive (one upsert per group per batch).
CREATE TABLE usage_rollups (
    tenant_id         text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    hour              timestamptz NOT NULL,
    model             text NOT NULL,
    feature           text NOT NULL,
    subject           text NOT NULL,
    requests          bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cached_tokens     bigint NOT NULL,
    cost_micro_usd    bigint NOT NULL,
    saved_micro_usd   bigint NOT NULL,
    cache_hits        bigint NOT NULL,
    interrupted       bigint NOT NULL,
    PRIMARY KEY (tenant_id, hour, model, feature, subject)
);
ALTER TABLE usage_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_rollups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_rollups
    USING (tenant_id = current_setting('meridian.tenant', true))
    WITH CHECK (tenant_id = current_setting('meridian.tenant', true));
