-- Tenancy and the RAG data model. Every tenant-owned row carries tenant_id, and row-level
-- security (forced, so it binds the owning role too) limits every query to the tenant
-- named by the transaction-local setting `meridian.tenant`: a query that forgets its
-- tenant filter still cannot see another tenant's rows, and one with no tenant set sees
-- nothing.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tenants (
    id          text PRIMARY KEY,
    region      text NOT NULL CHECK (region IN ('eu', 'us')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    sha256      bytea NOT NULL UNIQUE,
    roles       text[],
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE knowledge_bases (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    language    text NOT NULL DEFAULT 'english',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kb_id       uuid NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    title       text NOT NULL,
    media_type  text NOT NULL,
    object_key  text NOT NULL,
    bytes       bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chunks (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- Denormalised from the document so a knowledge-base filter and the vector order
    -- are on one table (the shape pgvector's iterative index scans serve).
    kb_id       uuid NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    document_id uuid NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    position    integer NOT NULL,
    heading     text,
    -- AES-256-GCM under the tenant's data key (nonce || ciphertext).
    text_enc    bytea NOT NULL,
    -- Lexemes for keyword search (language-aware); the text itself stays encrypted.
    tsv         tsvector NOT NULL,
    embedding   vector(384) NOT NULL
);
CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_kb ON chunks (kb_id);

CREATE TABLE chatbots (
    id            uuid PRIMARY KEY,
    tenant_id     text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kb_id         uuid NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name          text NOT NULL,
    model         text NOT NULL,
    system_prompt text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE usage_events (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Row-level security on every tenant-owned table.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['api_keys', 'knowledge_bases', 'documents', 'chunks', 'chatbots', 'usage_events'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''meridian.tenant'', true)) WITH CHECK (tenant_id = current_setting(''meridian.tenant'', true))',
            t);
    END LOOP;
END $$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = current_setting('meridian.tenant', true))
    WITH CHECK (id = current_setting('meridian.tenant', true));
