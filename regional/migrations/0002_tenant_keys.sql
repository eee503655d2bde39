-- Per-tenant data keys, stored only wrapped (AES-256-GCM) by the master key. Deleting a
-- tenant's row makes every document and chunk encrypted under it unreadable
-- (crypto-shredding), wherever copies of the ciphertext remain.
CREATE TABLE tenant_keys (
    tenant_id   text PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    wrapped     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenant_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_keys
    USING (tenant_id = current_setting('meridian.tenant', true))
    WITH CHECK (tenant_id = current_setting('meridian.tenant', true));
