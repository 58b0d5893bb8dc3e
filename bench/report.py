#!/usr/bin/env python3
"""Markdown report of one bench/run.sh run: python3 report.py RUN_DIR (reads raw.jsonl, env.txt).

Every figure is the median over the repetitions (REPS fresh starts of the system under test);
with more than one repetition, req/s also shows the range.
"""
import json
import os
import statistics as st
import sys
from collections import defaultdict
from math import comb

run_dir = sys.argv[1] if len(sys.argv) > 1 else "build/bench/results/latest"
rows = [json.loads(line) for line in open(os.path.join(run_dir, "raw.jsonl")) if line.strip()]
runs = [r for r in rows if r["type"] == "run"]
sessions = [r for r in rows if r["type"] == "session"]
streams = [r for r in rows if r["type"] == "streams"]

ORDER = ["direct", "nginx", "switchyard", "switchyard-anthropic", "switchyard-gemini"]
systems = sorted({r["system"] for r in rows if "system" in r}, key=lambda s: (ORDER.index(s) if s in ORDER else 9, s))
modes = [m for m in ("json", "sse") if any(r["mode"] == m for r in runs + sessions)]
conns = sorted({r["conns"] for r in runs})
TITLES = {"json": "(1) JSON chat completion (chat.completion, 1,142 B body)",
          "sse": "(2) SSE stream (20 chat.completion.chunk events + [DONE], 6,348 B)"}
STREAM_TARGET, RSS_TARGET_MB = 10000, 300   # MB = 10^6 bytes (300 MB = 286 MiB)


def med(xs):
    xs = [x for x in xs if x is not None]
    return st.median(xs) if xs else None


def f(x, nd=1):
    return "-" if x is None else f"{x:,.{nd}f}"


def mib(kb):
    return None if kb is None else kb / 1024


def errors(w):
    return w["err_connect"] + w["err_read"] + w["err_write"] + w["err_status"] + w["err_timeout"]


by_run = defaultdict(list)
for r in runs:
    by_run[(r["system"], r["mode"], r["conns"])].append(r)
by_session = defaultdict(list)
for s in sessions:
    by_session[(s["system"], s["mode"])].append(s)


def agg(system, mode, c):
    rs = by_run.get((system, mode, c))
    if not rs:
        return None
    w = [r["wrk"] for r in rs]
    return {
        "n": len(rs),
        "rps": med(x["rps"] for x in w), "rps_min": min(x["rps"] for x in w),
        "rps_max": max(x["rps"] for x in w),
        "p50": med(x["lat_p50_ms"] for x in w), "p99": med(x["lat_p99_ms"] for x in w),
        "us": med(r["sut_cpu_s"] / r["wrk"]["requests"] * 1e6 for r in rs
                  if r["sut_cpu_s"] is not None and r["wrk"]["requests"]),
        "cores": med(r["sut_cpu_s"] / r["wrk"]["duration_s"] for r in rs if r["sut_cpu_s"] is not None),
        "load_busy": med(r["load_cpu_busy"] for r in rs),
        "sut_busy": med(r["sut_cpu_busy"] for r in rs),
        "errors": sum(errors(x) for x in w),
        "non2xx": sum(x["err_status"] for x in w),
        "requests": sum(x["requests"] for x in w),
    }


out = []
p = out.append
stamp = os.path.basename(os.path.realpath(run_dir))
p(f"# Switchyard benchmark {stamp}\n")
try:
    p("```\n" + open(os.path.join(run_dir, "env.txt")).read().strip() + "\n```\n")
except OSError:
    pass
p("Same mock upstream for every system (nginx + echo module on 127.0.0.1:18080, canned OpenAI "
  "answers); wrk and the upstream share one CPU, the proxy under test has the other. nginx runs "
  "one worker with upstream keep-alive and `proxy_buffering off`; Switchyard runs one event loop. "
  "**Neither writes an access log** (nginx `access_log off`, Switchyard `server.access_log: off`). "
  "+p50/+p99 = latency added over the direct run at the same connection count. Proxy CPU = "
  "utime+stime of the proxy's processes during the run / requests completed. "
  "CPU busy = share of each CPU in use during the run, by anything (load CPU / proxy CPU).\n")

notes = []
nofile = None
try:
    for line in open(os.path.join(run_dir, "env.txt")):
        if line.startswith("open files limit:"):
            nofile = int(line.split()[3])
except (OSError, ValueError, IndexError):
    pass
for mode in modes:
    p(f"## {TITLES[mode]}\n")
    p("| system | conns | req/s | p50 ms | p99 ms | +p50 ms | +p99 ms | proxy CPU µs/req "
      "| proxy cores | CPU busy load/proxy | errors |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for system in systems:
        for c in conns:
            a = agg(system, mode, c)
            if not a:
                continue
            d = agg("direct", mode, c) if system != "direct" else None
            rps = f(a["rps"], 0)
            if a["n"] > 1:
                rps += f" ({f(a['rps_min'], 0)}–{f(a['rps_max'], 0)})"
            p(f"| {system} | {c} | {rps} | {f(a['p50'], 3)} | {f(a['p99'], 3)} "
              f"| {f(a['p50'] - d['p50'], 3) if d else '-'} | {f(a['p99'] - d['p99'], 3) if d else '-'} "
              f"| {f(a['us'], 1)} | {f(a['cores'], 2)} "
              f"| {f(a['load_busy'] * 100, 0)}% / {f(a['sut_busy'] * 100, 0) + '%' if system != 'direct' else '-'} "
              f"| {a['errors']} |")
            if a["errors"]:
                notes.append(f"{system} {mode} c={c}: {a['errors']} wrk errors "
                             f"({a['non2xx']} non-2xx) in {a['requests']:,} requests")
            if a["cores"] is not None and a["sut_busy"] - a["cores"] > 0.15:
                notes.append(f"{system} {mode} c={c}: other processes used "
                             f"{(a['sut_busy'] - a['cores']) * 100:.0f}% of the proxy's CPU: noisy")
    p("")


def sign_test(wins, n):
    """Two-sided exact binomial p-value of `wins` of `n` under a fair coin."""
    k = min(wins, n - wins)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def median_interval(xs):
    """Distribution-free 95 % interval of the median: order statistics (k, n + 1 - k)."""
    xs, n = sorted(xs), len(xs)
    k = 0
    while sum(comb(n, i) for i in range(k + 1)) / 2 ** n <= 0.025:
        k += 1
    return (xs[k - 1], xs[n - k]) if k >= 1 else None


def user_system(xs):
    """'user / system' medians of (user, system) µs pairs."""
    return f"{f(med(u for u, _ in xs))} / {f(med(k for _, k in xs))}" if xs else "-"


pairs_meta = [r for r in rows if r["type"] == "pairs"]
if pairs_meta:
    A, B = pairs_meta[0]["a"], pairs_meta[0]["b"]
    p(f"## Paired comparison: {B} against {A}\n")
    p(f"Both proxies up for the whole run; each pair is two back-to-back runs of "
      f"{pairs_meta[0]['seconds']} s at the same load ({A} first in odd pairs, {B} first in even "
      f"ones). Ratio = {B}'s CPU µs per request / {A}'s in the same pair; the interval is the "
      f"median's distribution-free 95 % interval; p = two-sided sign test of the pairs where {B} "
      f"cost less.\n")
    p(f"| mode | conns | pairs | {A} µs/req (median) | {B} µs/req (median) | ratio median "
      f"| 95 % interval | {B} cheaper in | sign test p | user / system µs, {A} | {B} |")
    p("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for mode in modes:
        for c in conns:
            per = defaultdict(dict)
            split = defaultdict(list)   # system -> [(user, sys) µs per request]
            for r in by_run.get((A, mode, c), []) + by_run.get((B, mode, c), []):
                if r["sut_cpu_s"] is not None and r["wrk"]["requests"]:
                    per[r["rep"]][r["system"]] = r["sut_cpu_s"] / r["wrk"]["requests"] * 1e6
                    if r.get("sut_sys_s") is not None:
                        k = r["sut_sys_s"] / r["wrk"]["requests"] * 1e6
                        split[r["system"]].append((per[r["rep"]][r["system"]] - k, k))
            both = [(v[A], v[B]) for v in per.values() if A in v and B in v]
            if not both:
                continue
            ratios = [b / a for a, b in both]
            wins = sum(1 for a, b in both if b < a)
            ci = median_interval(ratios)
            p(f"| {mode} | {c} | {len(both)} | {f(med(a for a, _ in both))} | {f(med(b for _, b in both))} "
              f"| {f(med(ratios), 3)} | {f'{ci[0]:.3f}–{ci[1]:.3f}' if ci else '-'} "
              f"| {wins} of {len(both)} | {sign_test(wins, len(both)):.2g} | {user_system(split.get(A))} | {user_system(split.get(B))} |")
    p("")

translated = [t for t in ("switchyard-anthropic", "switchyard-gemini") if t in systems]
if translated and "switchyard" in systems:
    p("## Translation cost\n")
    p("The same answer from an Anthropic-format and a Gemini-format upstream, translated for the "
      "OpenAI client, against Switchyard's OpenAI fast path in the same run. Target: at most "
      "15 µs more CPU per request.\n")
    p("| mode | conns | fast path µs/req | " + " | ".join(f"{t} µs/req (+Δ)" for t in translated)
      + " | " + " | ".join(f"{t} +p50 / +p99 ms vs fast path" for t in translated) + " |")
    p("|---|---:|---:|" + "---:|" * (2 * len(translated)))
    for mode in modes:
        for c in conns:
            base = agg("switchyard", mode, c)
            if not base:
                continue
            cells = [mode, str(c), f(base["us"], 1)]
            lat = []
            for t in translated:
                a = agg(t, mode, c)
                if not a or a["us"] is None or base["us"] is None:
                    cells.append("-")
                    lat.append("-")
                    continue
                cells.append(f"{f(a['us'], 1)} (+{f(a['us'] - base['us'], 1)})")
                lat.append(f"{f(a['p50'] - base['p50'], 3)} / {f(a['p99'] - base['p99'], 3)}")
            p("| " + " | ".join(cells + lat) + " |")
    p("")

if sessions:
    p("## Memory and streaming relay\n")
    p("Idle RSS: after start-up and one health check, before any chat request. Peak RSS: VmHWM after all the "
      "runs of that mode. Probe: 5 sequential streams from a paced upstream (20 events 5 ms "
      "apart, ~100 ms in all); a proxy that buffers shows a first byte close to the total.\n")
    hdr = "| system | idle RSS MiB |" + "".join(f" peak RSS MiB ({m}) |" for m in modes)
    hdr += " probe first byte ms | probe total ms |"
    p(hdr)
    p("|---|" + "---:|" * (len(modes) + 3))
    for system in systems:
        ss = [s for s in sessions if s["system"] == system]
        cells = [system, f(mib(med(s.get("rss_idle_kb") for s in ss)))]
        cells += [f(mib(med(s.get("peak_rss_kb") for s in by_session.get((system, m), []))))
                  for m in modes]
        cells += [f(med(s.get("probe_ttfb_ms") for s in ss), 2),
                  f(med(s.get("probe_total_ms") for s in ss), 2)]
        p("| " + " | ".join(cells) + " |")
    p("")

if streams:
    p("## Concurrent streams\n")
    c0 = streams[0]["client"]
    p(f"Each stream: 20 events + [DONE], {c0['interval_ms'] / 1000:g} s apart "
      f"(~{20 * c0['interval_ms'] / 1000:g} s), its own connection (no keep-alive), opened at "
      f"{c0['rate']:,}/s; a stall is a gap between events above {c0['stall_ms'] / 1000:g} s. "
      f"Target for Switchyard: {STREAM_TARGET:,} streams complete without stalls, "
      f"RSS ≤ {RSS_TARGET_MB} MB ({RSS_TARGET_MB * 1e6 / 2**20:.0f} MiB). "
      "Per stream = (RSS all open − idle RSS) / streams open.\n")
    p("| system | streams | complete | failed | hung | stalled | peak open | RSS all open MiB "
      "| peak RSS MiB | idle RSS MiB | per stream KiB | fds all open | first event p99 ms "
      "| worst gap ms | CPU µs/stream | target |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in streams:
        c = r["client"]
        rss_open = mib(c.get("sut_rss_all_open_kb"))
        per_stream = ((c["sut_rss_all_open_kb"] - r["rss_idle_kb"]) / c["peak_open"]
                      if c.get("sut_rss_all_open_kb") and r.get("rss_idle_kb") is not None
                      and c["peak_open"] else None)
        cpu = r["sut_cpu_s"] / c["streams"] * 1e6 if r.get("sut_cpu_s") is not None else None
        if r["system"] != "switchyard":
            target = "-"
        else:
            good = (c["complete"] == c["streams"] and c["stalled"] == 0 and not r["crashed"]
                    and rss_open is not None and rss_open * 2**20 <= RSS_TARGET_MB * 1e6)
            target = ("met" if good else "**not met**") + (
                "" if c["streams"] >= STREAM_TARGET else f" (at {c['streams']:,}, target is {STREAM_TARGET:,})")
        p(f"| {r['system']} | {c['streams']:,} | {c['complete']:,} | {c['failed']:,} | {c['hung']:,} "
          f"| {c['stalled']:,} | {c['peak_open']:,} | {f(rss_open)} | {f(mib(r.get('peak_rss_kb')))} "
          f"| {f(mib(r.get('rss_idle_kb')))} | {f(per_stream)} | {c.get('sut_fds_all_open') or '-'} "
          f"| {f(c['ttfe_p99_ms'], 1)} | {f(c['gap_max_ms'], 0)} | {f(cpu, 0)} | {target} |")
        if c["errors"]:
            notes.append(f"streams via {r['system']}: " + ", ".join(f"{k} ×{v}" for k, v in c["errors"].items())
                         + "".join(f"; {k}: `{v[:160]}`" for k, v in c.get("error_samples", {}).items()))
        lim = r.get("sut_nofile") or nofile
        if lim and c["streams"] * 2 + 64 > lim and c["complete"] < c["streams"]:
            notes.append(f"streams via {r['system']}: its open files limit ({lim}) is below the "
                         f"~{c['streams'] * 2 + 64} descriptors {c['streams']:,} proxied streams need "
                         "(one client and one upstream socket each): expect failures from that alone")
        if r["crashed"]:
            notes.append(f"streams via {r['system']}: the process died during the test")
    p("")

for s in sessions:
    if s.get("crashed"):
        notes.append(f"{s['system']} {s['mode']} rep {s['rep']}: the process died during the runs")
built = sorted({r["binary_mtime"] for r in sessions + streams if r.get("binary_mtime")})
if len(built) > 1:
    notes.append("**the Switchyard binary was rebuilt during this run** (modified at "
                 + ", ".join(built) + "): its rows mix builds")
p("## Checks\n")
for system in systems:
    for mode in modes:
        vs = sorted({s.get("verify", "?") for s in by_session.get((system, mode), [])})
        if vs:
            p(f"- response check {system} / {mode}: {'; '.join(vs)}")
for n in notes:
    p(f"- {n}")
if any(agg(s, m, c) and agg(s, m, c)["load_busy"] > 0.95 for s in systems for m in modes for c in conns):
    p("- Where the load CPU is ~100% busy, req/s is bounded by wrk + upstream, not by the proxy: "
      "compare proxy CPU µs/req there.")
print("\n".join(out))
