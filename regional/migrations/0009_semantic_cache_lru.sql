-- When each cached answer was last served, so a tenant's cache can be bounded by evicting
-- the least recently used entries first.
ALTER TABLE semantic_cache ADD COLUMN last_used timestamptz NOT NULL DEFAULT now();
CREATE INDEX semantic_cache_last_used ON semantic_cache (tenant_id, last_used);
