-- Document provenance and the text-search configuration each document was indexed with.
ALTER TABLE documents ADD COLUMN language    text NOT NULL DEFAULT 'english';
ALTER TABLE documents ADD COLUMN source_url  text;
ALTER TABLE documents ADD COLUMN sha256      bytea;
ALTER TABLE documents ADD COLUMN chunk_count integer NOT NULL DEFAULT 0;
ALTER TABLE chunks    ADD COLUMN tokens      integer NOT NULL DEFAULT 0;
CREATE INDEX documents_kb ON documents (kb_id);
CREATE INDEX chatbots_kb ON chatbots (kb_id);
