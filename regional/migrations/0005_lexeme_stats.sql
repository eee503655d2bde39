-- How many chunks of a knowledge base contain each lexeme, kept by ingest. Keyword search
-- uses it to search for the query's rarest lexemes only, so a question full of common
-- words does not rank half the knowledge base.
CREATE TABLE kb_lexemes (
    tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kb_id       uuid NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    lexeme      text NOT NULL,
    chunks      integer NOT NULL,
    PRIMARY KEY (kb_id, lexeme)
);
ALTER TABLE kb_lexemes ENABLE ROW LEVEL SECURITY;
ALTER TABLE kb_lexemes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON kb_lexemes
    USING (tenant_id = current_setting('meridian.tenant', true))
    WITH CHECK (tenant_id = current_setting('meridian.tenant', true));
