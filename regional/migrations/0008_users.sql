-- End users as the gateway sees them: the API key name or JWT subject that made requests,
-- per tenant, recorded from usage events (first and last seen, request count).
CREATE TABLE users (
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject     text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    requests    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, subject)
);
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = current_setting('meridian.tenant', true))
    WITH CHECK (tenant_id = current_setting('meridian.tenant', true));
