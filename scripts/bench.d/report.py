"""Turns the wrk outputs of scripts/bench into the markdown table in bench-results/gateway.md."""
import os
import platform
import re
import sys

run, rss_kb, duration = sys.argv[1], int(sys.argv[2]), sys.argv[3]
wasm_raw, wasm_gz = int(sys.argv[4]), int(sys.argv[5])
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse(name):
    text = open(os.path.join(run, name + ".txt")).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = {}
    for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        pct[int(p)] = float(v) * UNIT[u]
    return rps, pct


print("# Native gateway benchmark\n")
print(f"Machine: {os.cpu_count()} cores, {platform.machine()}; mock provider, gateway and wrk share the box. "
      f"{duration} s per run; non-streaming chat completion, mock answers in 0 ms.\n")
print("| concurrency | direct req/s | gateway req/s | direct p50 ms | gateway p50 ms | added p50 ms | direct p99 ms | gateway p99 ms | added p99 ms |")
print("|---|---|---|---|---|---|---|---|---|")
for c in (1, 16, 64):
    d_rps, d = parse(f"direct-c{c}")
    g_rps, g = parse(f"gateway-c{c}")
    print(f"| {c} | {d_rps:,.0f} | {g_rps:,.0f} | {d[50]:.3f} | {g[50]:.3f} | {g[50]-d[50]:.3f} | {d[99]:.3f} | {g[99]:.3f} | {g[99]-d[99]:.3f} |")
print()
_, base = parse("gateway-c1")
print("| failover at concurrency 1 | p50 ms | p99 ms | added p50 vs no failover | added p99 vs no failover |")
print("|---|---|---|---|---|")
for name, label in (("failover-5xx-c1", "first deployment answers 500"), ("failover-refused-c1", "first deployment refuses the connection")):
    _, f = parse(name)
    print(f"| {label} | {f[50]:.3f} | {f[99]:.3f} | {f[50]-base[50]:.3f} | {f[99]-base[99]:.3f} |")
print()
print(f"Gateway peak RSS (VmHWM) over all runs: {rss_kb / 1024:.1f} MiB")
print()
print("## Edge Worker (workerd, one isolate) vs direct to the mock\n")
print("| concurrency | path | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |")
print("|---|---|---|---|---|---|---|")
for c in (1, 16):
    _, d = parse(f"direct-c{c}")
    for name, label in ((f"edge-c{c}", "edge, no limits"), (f"edge-limited-c{c}", "edge + RateLimiter DO reserve/settle")):
        rps, e = parse(name)
        print(f"| {c} | {label} | {rps:,.0f} | {e[50]:.3f} | {e[99]:.3f} | {e[50]-d[50]:.3f} | {e[99]-d[99]:.3f} |")
_, plain = parse("edge-c1")
_, lim = parse("edge-limited-c1")
print()
print(f"Durable Object round trips (reserve + settle) at concurrency 1: +{lim[50]-plain[50]:.3f} ms p50, +{lim[99]-plain[99]:.3f} ms p99.")
print(f"Worker bundle: index_bg.wasm {wasm_raw/1048576:.2f} MiB raw, {wasm_gz/1048576:.2f} MiB gzip -9.")

if os.path.exists(os.path.join(run, "litellm-c1.txt")):
    print()
    print("## Peers, same mock, same run\n")
    print("| concurrency | gateway | req/s | added p50 ms | added p99 ms | added p50 vs Meridian |")
    print("|---|---|---|---|---|---|")
    for c in (1, 16):
        _, d = parse(f"direct-c{c}")
        _, m = parse(f"gateway-c{c}")
        m_add = m[50] - d[50]
        for name, label in ((f"gateway-c{c}", "Meridian (regional, native)"), (f"edge-c{c}", "Meridian edge (workerd)"), (f"portkey-c{c}", "Portkey gateway 1.15.2 (Node)"), (f"litellm-c{c}", "LiteLLM proxy 1.105.1 (Python)")):
            rps, x = parse(name)
            add = x[50] - d[50]
            print(f"| {c} | {label} | {rps:,.0f} | {add:.3f} | {x[99]-d[99]:.3f} | {add / m_add:.1f}x |")
