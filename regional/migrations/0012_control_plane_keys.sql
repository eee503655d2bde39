-- The control plane, first part: API keys issued at runtime (the admin API), key
-- rotation with an overlap, a digest directory for resolving a key before its tenant is
-- known, idempotent creates, and the hash-chained audit log.

-- Keys from the config (`source = 'config'`, mirrored at start-up) and keys issued
-- through the admin API (`source = 'admin'`) share one table. Only the SHA-256 of a
-- secret is stored; `prefix` is its first characters, for people to recognise it.
ALTER TABLE api_keys ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE api_keys ADD COLUMN source text NOT NULL DEFAULT 'config' CHECK (source IN ('config', 'admin'));
ALTER TABLE api_keys ADD COLUMN prefix text NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
ALTER TABLE api_keys ADD COLUMN revoked_at timestamptz;
ALTER TABLE api_keys ADD COLUMN created_by text NOT NULL DEFAULT 'config';
ALTER TABLE api_keys ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_listing ON api_keys (tenant_id, created_at DESC, id DESC);

-- A rotated key's previous secret, valid until the end of the overlap.
CREATE TABLE api_key_overlaps (
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_id      uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    sha256      bytea NOT NULL UNIQUE,
    valid_until timestamptz NOT NULL
);

-- Digest → tenant, for resolving a presented key before its tenant is known. It holds
-- no secret (a SHA-256 of a 190-bit random key) and no tenant data beyond the id, so it
-- is the one table without row-level security; only resolution reads it. The config's
-- keys are entered at start-up, with their mirror.
CREATE TABLE key_directory (
    sha256      bytea PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE
);

-- Idempotency-Key of admin creates: the same key with the same request returns the
-- object it created; with another request it is refused.
CREATE TABLE admin_idempotency (
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key         text NOT NULL,
    request     bytea NOT NULL,
    object_id   uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- The audit log: append-only, one hash chain per tenant (hash = SHA-256 over the
-- previous hash and the record, computed by the application, checked by
-- `meridian-regional audit verify`). No foreign key: the record of a tenant outlives it.
CREATE TABLE audit_log (
    tenant_id     text NOT NULL,
    seq           bigint NOT NULL,
    at            timestamptz NOT NULL,
    actor         text NOT NULL,
    action        text NOT NULL,
    object_type   text NOT NULL,
    object_id     text NOT NULL,
    before_digest text,
    after_digest  text,
    request_id    text,
    prev_hash     text NOT NULL,
    hash          text NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['api_key_overlaps', 'admin_idempotency', 'audit_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''meridian.tenant'', true)) WITH CHECK (tenant_id = current_setting(''meridian.tenant'', true))',
            t);
    END LOOP;
END $$;

-- Append-only, for the application's own role too: it may insert and read, never change
-- or remove a record (the privilege is revoked, and a trigger refuses it regardless).
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM CURRENT_USER;
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Each tenant's chain head (last sequence number and hash), written in the same
-- transaction as the record: a record removed from the end of the chain no longer
-- matches it.
CREATE TABLE audit_heads (
    tenant_id   text PRIMARY KEY,
    seq         bigint NOT NULL,
    hash        text NOT NULL
);
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads
    USING (tenant_id = current_setting('meridian.tenant', true))
    WITH CHECK (tenant_id = current_setting('meridian.tenant', true));
