#!/usr/bin/env node
// Concurrent-streams client for bench/run.sh: opens N streamed chat completions against a paced
// upstream (one SSE event every INTERVAL), holds them all open, and checks each one arrives
// whole and without stalls. Node.js stdlib only.
//
//   node streams.mjs --url URL --body FILE [--header 'Name: value']... --streams N
//        [--rate R] [--events 21] [--interval-ms 1000] [--stall-ms 2500] [--pids P1,P2]
//        [--out FILE]
//
// A stream is "complete" when it got HTTP 200, all --events SSE events (the [DONE] sentinel
// included) and a clean end. Its largest gap between consecutive events (from the response
// head for the first one) is compared with --stall-ms: a gap above that is a stall. With
// --pids, the resident memory (VmRSS) and open descriptors of those processes (the system under
// test) are sampled while the streams are open. One JSON line with the summary goes to stdout
// (and --out); progress goes to stderr.
import fs from "node:fs";
import http from "node:http";

function parseArgs(argv) {
  const a = { headers: [], streams: 1000, rate: 2000, events: 21, intervalMs: 1000, stallMs: 0,
              pids: [], out: "", model: "" };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i], v = () => argv[++i];
    switch (k) {
      case "--url": a.url = v(); break;
      case "--body": a.body = v(); break;
      case "--model": a.model = v(); break;
      case "--header": a.headers.push(v()); break;
      case "--streams": a.streams = Number(v()); break;
      case "--rate": a.rate = Number(v()); break;
      case "--events": a.events = Number(v()); break;
      case "--interval-ms": a.intervalMs = Number(v()); break;
      case "--stall-ms": a.stallMs = Number(v()); break;
      case "--pids": a.pids = v().split(",").filter(Boolean); break;
      case "--out": a.out = v(); break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!a.url || !a.body) throw new Error("--url and --body are required");
  if (!a.stallMs) a.stallMs = Math.max(2.5 * a.intervalMs, a.intervalMs + 1000);
  return a;
}

const args = parseArgs(process.argv);
let body = fs.readFileSync(args.body, "utf8");
if (args.model) {
  const j = JSON.parse(body); j.model = args.model; body = JSON.stringify(j);
}
const headers = { "content-type": "application/json", accept: "text/event-stream",
                  "content-length": Buffer.byteLength(body) };
for (const h of args.headers) {
  const i = h.indexOf(":");
  headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
}
// One connection per stream, closed at its end: what N independent clients do.
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const url = new URL(args.url);

const t0 = performance.now();
const streams = [];          // per-stream records
let started = 0, open = 0, finished = 0, peakOpen = 0, peakOpenAt = -1;
const errors = new Map();    // reason -> count
const noteError = (why) => errors.set(why, (errors.get(why) || 0) + 1);

function startStream() {
  const s = { start: performance.now(), status: 0, events: 0, done: false, firstEvent: -1,
              last: 0, maxGap: 0, end: -1, ok: false, error: "" };
  streams.push(s);
  started++;
  let tail = "";
  let counted = false;      // counted in `open`
  const finish = (error) => {
    if (s.end >= 0) return;
    s.end = performance.now();
    if (counted) open--;
    finished++;
    s.ok = !error && s.status === 200 && s.done && s.events === args.events;
    if (!s.ok) {
      s.error = error || (s.status !== 200 ? `http_${s.status}`
                          : !s.done ? "no_[DONE]" : `events_${s.events}`);
      noteError(s.error);
    }
  };
  const req = http.request({ agent, host: url.hostname, port: url.port, path: url.pathname + url.search,
                             method: "POST", headers }, (res) => {
    s.status = res.statusCode;
    s.last = performance.now();
    if (res.statusCode !== 200) {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { if (text.length < 300) text += d; });
      res.on("end", () => { s.detail = text.slice(0, 300); finish(); });
      return;
    }
    counted = true;
    open++;
    if (open > peakOpen) { peakOpen = open; peakOpenAt = performance.now() - t0; }
    res.setEncoding("utf8");
    res.on("data", (d) => {
      tail += d;
      let i;
      while ((i = tail.indexOf("\n\n")) >= 0) {      // one SSE event per blank-line separator
        const ev = tail.slice(0, i);
        tail = tail.slice(i + 2);
        const now = performance.now();
        if (s.firstEvent < 0) s.firstEvent = now - s.start;
        s.maxGap = Math.max(s.maxGap, now - s.last);
        s.last = now;
        s.events++;
        if (ev.startsWith("data: [DONE]")) s.done = true;
      }
    });
    res.on("end", () => finish());
    res.on("error", (e) => finish(e.code || e.message));
    res.on("aborted", () => finish("aborted"));
  });
  req.on("error", (e) => finish(e.code || e.message));
  req.end(body);
}

// ---- memory of the system under test ---------------------------------------------------------
function statusKb(pid, field) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+)`, "m"));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}
function fdCount(pid) {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return 0; }
}
const mem = { peakRssKb: 0, rssAtPeakOpenKb: 0, fdsAtPeakOpen: 0, samples: 0 };
function sampleMem() {
  if (!args.pids.length) return;
  const rss = args.pids.reduce((t, p) => t + statusKb(p, "VmRSS"), 0);
  mem.samples++;
  mem.peakRssKb = Math.max(mem.peakRssKb, rss);
  // RSS "with all streams open": the largest sample taken while the open count is at its peak
  if (open === peakOpen && open > 0 && rss >= mem.rssAtPeakOpenKb) {
    mem.rssAtPeakOpenKb = rss;
    mem.fdsAtPeakOpen = args.pids.reduce((t, p) => t + fdCount(p), 0);
  }
}

// ---- ramp: `rate` new streams per second, in 10 ms steps --------------------------------------
const perTick = Math.max(1, Math.round(args.rate / 100));
const ramp = setInterval(() => {
  for (let i = 0; i < perTick && started < args.streams; i++) startStream();
  if (started >= args.streams) clearInterval(ramp);
}, 10);

// Give up on streams that have not ended well after the last one should have.
const rampS = args.streams / args.rate;
const deadlineMs = (rampS * 1000) + (args.events - 1) * args.intervalMs + 30000;
let liveStalled = 0;
const tick = setInterval(() => {
  sampleMem();
  const now = performance.now();
  liveStalled = streams.filter((s) => s.end < 0 && s.status === 200 && now - s.last > args.stallMs).length;
  if (finished >= args.streams || now - t0 > deadlineMs) wrapUp();
}, 250);
const progress = setInterval(() => {
  process.stderr.write(`  streams t=${((performance.now() - t0) / 1000).toFixed(0)}s started=${started} ` +
    `open=${open} finished=${finished} failed=${[...errors.values()].reduce((a, b) => a + b, 0)} ` +
    `stalled-now=${liveStalled} rss=${(mem.peakRssKb / 1024).toFixed(1)}MiB(peak)\n`);
}, 2000);

function pct(xs, p) {
  if (!xs.length) return null;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))];
}
let wrapped = false;
function wrapUp() {
  if (wrapped) return;
  wrapped = true;
  clearInterval(ramp); clearInterval(tick); clearInterval(progress);
  const hung = streams.filter((s) => s.end < 0).length;
  for (const s of streams) if (s.end < 0) noteError("hung");
  const okS = streams.filter((s) => s.ok);
  const stalled = streams.filter((s) => s.status === 200 && s.maxGap > args.stallMs);
  const r2 = (x) => (x == null ? null : Math.round(x * 100) / 100);
  const samples = {};
  for (const s of streams) if (!s.ok && s.detail && !samples[s.error]) samples[s.error] = s.detail;
  const out = {
    url: args.url, streams: args.streams, rate: args.rate, events_expected: args.events,
    interval_ms: args.intervalMs, stall_ms: args.stallMs,
    complete: okS.length, failed: args.streams - okS.length - hung, hung,
    stalled: stalled.length, peak_open: peakOpen, peak_open_at_s: r2(peakOpenAt / 1000),
    ttfe_p50_ms: r2(pct(okS.map((s) => s.firstEvent), 50)),
    ttfe_p99_ms: r2(pct(okS.map((s) => s.firstEvent), 99)),
    ttfe_max_ms: r2(pct(okS.map((s) => s.firstEvent), 100)),
    gap_p50_ms: r2(pct(okS.map((s) => s.maxGap), 50)),
    gap_p99_ms: r2(pct(okS.map((s) => s.maxGap), 99)),
    gap_max_ms: r2(pct(streams.filter((s) => s.status === 200).map((s) => s.maxGap), 100)),
    duration_p50_s: r2(pct(okS.map((s) => (s.end - s.start) / 1000), 50)),
    wall_s: r2((performance.now() - t0) / 1000),
    sut_peak_rss_kb: mem.peakRssKb || null, sut_rss_all_open_kb: mem.rssAtPeakOpenKb || null,
    sut_fds_all_open: mem.fdsAtPeakOpen || null, mem_samples: mem.samples,
    errors: Object.fromEntries(errors), error_samples: samples,
  };
  const line = JSON.stringify(out);
  process.stdout.write(line + "\n");
  if (args.out) fs.appendFileSync(args.out, line + "\n");
  // Sockets of hung streams would keep the process alive.
  process.exit(0);
}
