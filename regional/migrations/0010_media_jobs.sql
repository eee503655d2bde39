-- Media jobs (images, speech, transcription, video): the source of truth for a job's
-- state. The Redis stream only says "there is work"; a worker claims a job here with a
-- lease (status and lease checked in one UPDATE), so a job succeeds at most once however
-- often it is delivered. The request is sealed with the tenant's data key.
CREATE TABLE media_jobs (
    id              uuid PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_name       text NOT NULL,
    feature         text,
    kind            text NOT NULL,
    model           text NOT NULL,
    status          text NOT NULL,
    request_enc     bytea NOT NULL,
    upload_key      text,
    idempotency_key text,
    request_sha256  bytea NOT NULL,
    attempts        int NOT NULL DEFAULT 0,
    worker          text,
    lease_until     timestamptz,
    progress        real,
    outputs         jsonb NOT NULL DEFAULT '[]',
    error           text,
    deployment      text,
    cost_usd        double precision,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX media_jobs_listing ON media_jobs (tenant_id, created_at DESC, id DESC);
CREATE INDEX media_jobs_unfinished ON media_jobs (tenant_id, status) WHERE status IN ('queued', 'running');
ALTER TABLE media_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE media_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON media_jobs
    USING (tenant_id = current_setting('meridian.tenant', true))
    WITH CHECK (tenant_id = current_setting('meridian.tenant', true));
