"""Formats meridian-bench-semantic's result (argv[2], a JSON file) and the evaluation set's
make-up (argv[1]) as Markdown, and picks the default threshold: the lowest at which the
false-hit rate over all negatives, with the guard, is below 1% for the model."""
import json
import os
import platform
import sys

makeup, r = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
cols = r["columns"]
rows = [dict(zip(cols, p)) for p in r["pairs"]]
kinds = sorted({x["kind"] for x in rows})
negative_kinds = [k for k in kinds if k != "paraphrase"]
# 0.85–0.97 as the issue asks, and 0.98–0.99 for the multilingual model's compressed scale.
thresholds = [round(0.85 + 0.01 * i, 2) for i in range(15)]


def served(x, model, t, guard):
    # Served only within the same scope (language), at or above the threshold, and past
    # the guard when it is on: what the cache does.
    return x["same_language"] and x[f"cos_{model}"] >= t and (not guard or x["guard"] == "pass")


def rate(xs, model, t, guard):
    return sum(served(x, model, t, guard) for x in xs) / len(xs) if xs else float("nan")


def pct(v):
    return f"{100 * v:.1f}%"


print("# Semantic cache: evaluation and lookup latency\n")
print(f"Machine: {os.cpu_count()} cores, {platform.machine()}.\n")
src = makeup["sources"]
print(f"Evaluation set, built at bench time (`scripts/bench.d/semantic_pairs.py`): {src['english_messages']} usable English messages from "
      f"{src['gettext_domains']} Debian gettext catalogs in {len(src['languages'])} languages ({', '.join(src['languages'])}), and the English questions of the PyPI package chatterbot-corpus 1.3.3.\n")
print("| class | expected | pairs used (available) | example |\n|---|---|---|---|")
for k in kinds:
    m = makeup["classes"].get(k, {})
    ex = makeup["examples"].get(k)
    ex = f"{ex[0]!r} / {ex[1]!r}" if ex else ""
    print(f"| {k} | {'hit' if k == 'paraphrase' else 'miss'} | {m.get('used')} ({m.get('available')}) | {ex.replace('|', '/')} |")
print("\nHow each class is made: paraphrases — two different English messages (not differing only in case and punctuation) whose translations are identical in ≥2 languages and in ≥1/5 of the languages translating both; "
      "lexical neighbours — one word substituted, added or removed, translated differently in every language translating both (≥3); other language — a message and its translation; "
      "negation — a chatterbot question negated by rule; number/entity changed — a message with its number changed, or a capitalised name swapped for another from the catalogs.\n")
print("A pair counts as served when the language detection puts both in one scope, the cosine similarity (each model, both texts embedded as queries) reaches the threshold, and — with the guard — the guard passes.\n")

negatives = [x for x in rows if not x["should_hit"]]
positives = [x for x in rows if x["should_hit"]]
choice = {}
for model in ("minilm", "e5"):
    name = {"minilm": "all-MiniLM-L6-v2", "e5": "multilingual-e5-small (4-bit)"}[model]
    print(f"\n## {name}\n")
    print("| threshold | paraphrase hit rate | false hits, no guard | false hits, guard | " + " | ".join(f"{k} (guard)" for k in negative_kinds) + " |")
    print("|---" * (4 + len(negative_kinds)) + "|")
    for t in thresholds:
        by_kind = [rate([x for x in rows if x["kind"] == k], model, t, True) for k in negative_kinds]
        print(f"| {t:.2f} | {pct(rate(positives, model, t, True))} | {pct(rate(negatives, model, t, False))} | {pct(rate(negatives, model, t, True))} | " + " | ".join(pct(v) for v in by_kind) + " |")
    ok = [t for t in thresholds if rate(negatives, model, t, True) < 0.01]
    choice[model] = ok[0] if ok else None
    if ok:
        t = ok[0]
        print(f"\nLowest threshold with < 1% false hits (guard on): **{t:.2f}** — paraphrase hit rate {pct(rate(positives, model, t, True))}, "
              f"false hits {pct(rate(negatives, model, t, True))} (without the guard at the same threshold: {pct(rate(negatives, model, t, False))}).")
    else:
        print("\nNo threshold in 0.85–0.99 keeps false hits under 1% with this model.")
    same_lang = [x for x in rows if x["kind"] == "other_language"]
    if same_lang:
        print(f"\nOther-language pairs above 0.90 by similarity alone: {pct(sum(x[f'cos_{model}'] >= 0.90 for x in same_lang) / len(same_lang))}; "
              f"kept apart by the language scope: {pct(sum(not x['same_language'] for x in same_lang) / len(same_lang))}.")

print("\n## Lookup latency\n")
e = r["single_question_embed"]
print(f"Embedding one question (2 cores): MiniLM p50 {e['minilm']['p50_ms']} ms, p95 {e['minilm']['p95_ms']} ms; E5 p50 {e['e5']['p50_ms']} ms, p95 {e['e5']['p95_ms']} ms "
      f"(a repeated question's vector comes from the Redis embedding cache instead).\n")
print("Regional store (PostgreSQL + pgvector HNSW, RLS, one tenant, every entry in one scope — the worst case; decrypting and checking the nearest entry included):\n")
print("| entries | load s | lookup p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
for k, v in r["regional_lookup"].items():
    lk = v["lookup"]
    print(f"| {k.split('_')[1]} | {v['load_s']} | {lk['p50_ms']} | {lk['p95_ms']} | {lk['p99_ms']} |")
edge = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else None
if edge:
    print("\nEdge (the Worker in workerd; the tenant's SemanticCache Durable Object; the question embedded by the EU backend's MiniLM, "
          "cold embedding cache; every entry in the probes' scope; 100 probes per row, sequential; the Server-Timing parts are whole milliseconds as the Worker clock gives them):\n")
    print("| entries | import s | hit probes served | hit end to end p50 / p95 / p99 ms | embed p50 / p95 | object lookup p50 / p95 / p99 | miss end to end (mock provider) p50 / p95 | miss object p50 / p95 | index MB in memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, v in edge.items():
        h, m = v["hit"], v["miss"]
        trio = lambda x: f"{x['p50_ms']} / {x['p95_ms']} / {x['p99_ms']}"
        duo = lambda x: f"{x['p50_ms']} / {x['p95_ms']}"
        print(f"| {k.split('_')[1]} | {v['import_s']} | {v['served']}/{v['hit_probes']} (miss probes served: {v['miss_probes_served']}) | {trio(h['end_to_end'])} | {duo(h['embed'])} | {trio(h['object'])} | "
              f"{duo(m['end_to_end_with_mock_provider'])} | {duo(m['object'])} | {v['object_stats']['index_bytes'] / 1e6:.1f} |")
else:
    print("\nEdge lookups: not measured in this run.")
print(f"\nChosen defaults: {json.dumps(choice)}")
