-- The local embedding model each knowledge base was built with (chosen from the tenant's
-- languages when it is created). Its chunks' vectors live in that model's space, so the
-- base is always searched with the same model; both models give 384 dimensions.
ALTER TABLE knowledge_bases ADD COLUMN embedding_model text NOT NULL DEFAULT 'all-minilm-l6-v2'
    CHECK (embedding_model IN ('all-minilm-l6-v2', 'multilingual-e5-small'));
