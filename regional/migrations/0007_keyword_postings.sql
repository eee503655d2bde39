-- Keyword search over an inverted index of our own: one row per (chunk, lexeme) with the
-- term frequency and the chunk's length, scored with BM25 from an index-only scan.
--
-- Why not the GIN index on chunks.tsv: under row-level security PostgreSQL may only use
-- an index for a condition whose operator is LEAKPROOF, and `@@` is not — so every
-- keyword search read every chunk (a parallel sequential scan: ~80 ms at 100k chunks).
-- Equality on uuid and text is leakproof, so `kb_id = $1 AND lexeme = ...` uses this
-- index with the tenant policy still applied to every row.
CREATE TABLE chunk_lexemes (
    tenant_id   text NOT NULL,
    kb_id       uuid NOT NULL,
    lexeme      text NOT NULL,
    chunk_id    bigint NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    tf          integer NOT NULL,
    len         integer NOT NULL,
    PRIMARY KEY (chunk_id, lexeme)
);
CREATE INDEX chunk_lexemes_search ON chunk_lexemes (kb_id, lexeme) INCLUDE (tenant_id, chunk_id, tf, len);
ALTER TABLE chunk_lexemes ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunk_lexemes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chunk_lexemes
    USING (tenant_id = current_setting('meridian.tenant', true))
    WITH CHECK (tenant_id = current_setting('meridian.tenant', true));

-- BM25 needs the number of chunks and their mean length per knowledge base.
ALTER TABLE knowledge_bases ADD COLUMN chunk_count bigint NOT NULL DEFAULT 0;
ALTER TABLE knowledge_bases ADD COLUMN lexeme_total bigint NOT NULL DEFAULT 0;

-- The GIN index served nothing under RLS and cost every insert.
DROP INDEX chunks_tsv;

-- Backfill every tenant's existing chunks (as the tables' owner, with RLS lifted for the
-- duration of this migration only).
ALTER TABLE chunks NO FORCE ROW LEVEL SECURITY;
ALTER TABLE chunk_lexemes NO FORCE ROW LEVEL SECURITY;
ALTER TABLE kb_lexemes NO FORCE ROW LEVEL SECURITY;
ALTER TABLE knowledge_bases NO FORCE ROW LEVEL SECURITY;
INSERT INTO chunk_lexemes (tenant_id, kb_id, lexeme, chunk_id, tf, len)
    SELECT c.tenant_id, c.kb_id, t.lexeme, c.id, coalesce(cardinality(t.positions), 1), length(c.tsv) FROM chunks c, unnest(c.tsv) t;
DELETE FROM kb_lexemes;
INSERT INTO kb_lexemes (tenant_id, kb_id, lexeme, chunks)
    SELECT tenant_id, kb_id, lexeme, count(*) FROM chunk_lexemes GROUP BY tenant_id, kb_id, lexeme;
UPDATE knowledge_bases kb SET chunk_count = s.n, lexeme_total = s.total
    FROM (SELECT kb_id, count(*) AS n, sum(length(tsv)) AS total FROM chunks GROUP BY kb_id) s WHERE s.kb_id = kb.id;
ALTER TABLE chunks FORCE ROW LEVEL SECURITY;
ALTER TABLE chunk_lexemes FORCE ROW LEVEL SECURITY;
ALTER TABLE kb_lexemes FORCE ROW LEVEL SECURITY;
ALTER TABLE knowledge_bases FORCE ROW LEVEL SECURITY;
