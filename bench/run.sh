#!/usr/bin/env bash
# Switchyard's end-to-end benchmark: the same load, against the same mock upstream, sent
#   (a) direct to the upstream (the floor), (b) through nginx as a plain reverse proxy (the bar),
#   (c) through Switchyard, (d) through Switchyard translating to an Anthropic-format upstream
#   (switchyard-anthropic) and (e) to a Gemini-format one (switchyard-gemini): same answer,
#   other dialect, so (d) - (c) and (e) - (c) are the cost of translation,
# side by side in one run, for (1) a ~1.1 KB JSON chat completion and (2) a 20-chunk SSE stream.
# Then a concurrent-streams test: STREAMS slow SSE streams held open through Switchyard at once.
#
#   ./bench/run.sh              everything (about 12 min with the defaults)
#   ./bench/run.sh report DIR   rebuild the Markdown report of an earlier run
#   ./bench/run.sh stop         stop whatever an interrupted run left behind
#   ./bench/run.sh pairs        nginx against Switchyard in PAIRS alternating short runs (below)
#   Quick look:  DURATION=3 REPS=1 STREAMS=1000 ./bench/run.sh
#
# Knobs (environment; lists take commas or spaces):
#   SYSTEMS=direct,nginx,switchyard,switchyard-anthropic,switchyard-gemini  MODES=json,sse  CONNS=1,16,64
#     (switchyard-governed: Switchyard with governance on — a key with a budget and two rate
#     limits, the ledger on SQLite, sync durability — on GOVERNED_PORT=18410; for `pairs`)
#     (switchyard-shared: the same on PostgreSQL and Redis, the engines many nodes share — started
#     by run.sh on SHARED_PG_PORT=18420 and SHARED_REDIS_PORT=18430, pinned with the load — on
#     SHARED_PORT=18415; for `pairs`)
#   DURATION=10 (s per wrk run)  WARMUP=3 (s, 16 connections, not recorded)  REPS=3 (medians)
#   STREAMS=10000 (0 skips the streams test)  STREAM_SYSTEMS=switchyard (nginx, direct too)
#   STREAM_INTERVAL=1 (s between the 20 events of a paced stream)  STREAM_RATE=2000 (opened/s)
#   PIN=1 (wrk, node and the upstream on CPU LOAD_CPU=0; the proxy under test on SUT_CPU=1)
#   SWITCHYARD_BIN=build/switchyard  SWITCHYARD_CONFIG=bench/switchyard.yaml  SWITCHYARD_PORT=18400
#   OUT=build/bench/results  WRK_THREADS=1
#   HALT_POLL_NS= (unset: the guest's cpuidle halt polling as it is; a number of ns: written to
#     /sys/module/haltpoll/parameters/guest_halt_poll_ns for the run and restored after, as root.
#     On a VM that halts its idle vCPUs at once, every wake-up of a proxy costs tens of µs and
#     latency at one connection measures the host, not the proxy: see bench/README.md)
#   pairs: PAIRS=20 PAIR_SECONDS=5; SYSTEMS names the two systems compared (default nginx,switchyard)
#
# `pairs` is for a noisy machine, where one run's CPU per request moves by ±5-10 % with whatever
# else the host does: both proxies are started once and stay up (the idle one costs nothing), and
# each pair is two back-to-back wrk runs of PAIR_SECONDS at the same load, A then B or B then A
# in turn. The report gives each pair's ratio B/A, their median with a distribution-free 95 %
# interval, and in how many pairs B cost less (a sign test): drift hits both halves of a pair.
#
# Measured per system, mode and connection count: requests/s, latency p50/p99 and the
# difference to direct (wrk, same connections), CPU time of the proxy process tree per request
# (utime+stime from /proc/PID/stat before and after the wrk run, divided by the requests it
# completed), its peak RSS (VmHWM) and idle RSS (VmRSS after start-up and a health check), and
# how busy both CPUs were (so that noise from other work on the machine shows).
# Fixed ports: mock upstream 127.0.0.1:18080, nginx 127.0.0.1:18090.
# Output: build/bench/results/<stamp>.md (the report) and build/bench/results/<stamp>/ (raw.jsonl,
# logs); build/bench/ itself is CMake's build folder for bench/ (micro_bench).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
source "$BENCH_DIR/lib.sh"

list() { echo "${1//,/ }"; }
PAIR_SYSTEMS=$(list "${SYSTEMS:-nginx,switchyard}")   # `pairs` compares two
SYSTEMS=$(list "${SYSTEMS:-direct,nginx,switchyard,switchyard-anthropic,switchyard-gemini}")
MODES=$(list "${MODES:-json,sse}")
CONNS=$(list "${CONNS:-1,16,64}")
STREAM_SYSTEMS=$(list "${STREAM_SYSTEMS:-switchyard}")
DURATION=${DURATION:-10}; DURATION=${DURATION%s}
WARMUP=${WARMUP:-3}; WARMUP=${WARMUP%s}
REPS=${REPS:-3}
STREAMS=${STREAMS:-10000}
STREAM_INTERVAL=${STREAM_INTERVAL:-1}
STREAM_RATE=${STREAM_RATE:-2000}
PIN=${PIN:-1}
LOAD_CPU=${LOAD_CPU:-0}
SUT_CPU=${SUT_CPU:-1}
WRK_THREADS=${WRK_THREADS:-1}
SWITCHYARD_BIN=${SWITCHYARD_BIN:-$ROOT/build/switchyard}
SWITCHYARD_CONFIG=${SWITCHYARD_CONFIG:-$BENCH_DIR/switchyard.yaml}   # its routes and models are the bench's
export SWITCHYARD_PORT=${SWITCHYARD_PORT:-18400}   # read by bench/switchyard.yaml
export GOVERNED_PORT=${GOVERNED_PORT:-18410}       # switchyard-governed (bench/switchyard-governed.yaml)
export SHARED_PORT=${SHARED_PORT:-18415}           # switchyard-shared (bench/switchyard-shared.yaml)
export SHARED_PG_PORT=${SHARED_PG_PORT:-18420} SHARED_REDIS_PORT=${SHARED_REDIS_PORT:-18430}
OUT=${OUT:-$ROOT/build/bench/results}
UPSTREAM=http://127.0.0.1:18080
AUTH="Authorization: Bearer sk-bench"   # sent to every system, so requests are byte-identical

if [[ $PIN == 1 ]]; then
  PIN_LOAD=(taskset -c "$LOAD_CPU"); PIN_SUT=(taskset -c "$SUT_CPU")
else
  PIN_LOAD=(); PIN_SUT=()
fi

# ------------------------------------------------------------------------- systems ---
sys_port() {
  case $1 in
    direct) echo 18080 ;; nginx) echo 18090 ;;
    switchyard-governed) echo "$GOVERNED_PORT" ;; switchyard-shared) echo "$SHARED_PORT" ;;
    switchyard*) echo "$SWITCHYARD_PORT" ;;
  esac
}

# sys_url SYSTEM KIND : the chat URL for KIND fast (/v1), slow (/slow/v1) or paced (/paced/v1).
# Switchyard has one URL and picks the upstream by model (routes in switchyard.yaml).
sys_url() {
  local prefix=/v1
  [[ $2 == slow ]] && prefix=/slow/v1
  [[ $2 == paced ]] && prefix=/paced/v1
  case $1 in
    direct) echo "$UPSTREAM$prefix/chat/completions" ;;
    nginx) echo "http://127.0.0.1:18090$prefix/chat/completions" ;;
    switchyard*) echo "http://127.0.0.1:$(sys_port "$1")/v1/chat/completions" ;;
  esac
}
# sys_model SYSTEM KIND : the "model" to send (only Switchyard routes by it)
sys_model() {
  if [[ $1 == switchyard-* ]]; then echo "gpt-4o-mini-${1#switchyard-}"
  elif [[ $1 == switchyard && $2 != fast ]]; then echo "gpt-4o-mini-$2"; else echo gpt-4o-mini; fi
}

sys_start() {
  case $1 in
    direct) return 0 ;;
    nginx)
      ngx_start nginx-proxy "${NGX_PROXY_CONF:-$BENCH_DIR/nginx-proxy.conf}" "${PIN_SUT[@]}" &&
        wait_http http://127.0.0.1:18090/health 10 ;;
    switchyard-governed)
      # Governance on: the bench key in a team, a budget and two rate limits that apply to
      # every request (set far above what a run spends or sends, so nothing is refused), the
      # ledger on SQLite with the default (sync) durability.
      rm -f "$RUN_DIR"/governed.db*
      GOVERNED_DB=$RUN_DIR/governed.db proc_start switchyard-governed "$RUN_DIR/switchyard-governed.log" \
        "${PIN_SUT[@]}" "$SWITCHYARD_BIN" serve --config "$BENCH_DIR/switchyard-governed.yaml" &&
        wait_http "http://127.0.0.1:$GOVERNED_PORT/healthz" 10 || return 1
      governance_setup "$GOVERNED_PORT" ;;
    switchyard-shared)
      shared_engines_start || return 1
      SHARED_SPOOL=$RUN_DIR/shared.spool proc_start switchyard-shared "$RUN_DIR/switchyard-shared.log" \
        "${PIN_SUT[@]}" "$SWITCHYARD_BIN" serve --config "$BENCH_DIR/switchyard-shared.yaml" &&
        wait_http "http://127.0.0.1:$SHARED_PORT/healthz" 10 || return 1
      governance_setup "$SHARED_PORT" ;;
    switchyard*)
      proc_start switchyard "$RUN_DIR/switchyard.log" "${PIN_SUT[@]}" \
        "$SWITCHYARD_BIN" serve --config "$SWITCHYARD_CONFIG"
      wait_http "http://127.0.0.1:$SWITCHYARD_PORT/healthz" 10 ;;
  esac
}

# governance_setup PORT : the bench key's team, a budget and two rate limits, far above what a
# run spends or sends (nothing is refused), through the admin API.
governance_setup() {
  local admin=(curl -sf -o /dev/null -H "Authorization: Bearer sk-bench-admin" -H 'Content-Type: application/json')
  "${admin[@]}" "http://127.0.0.1:$1/admin/v1/teams" -d '{"id":"bench"}' &&
    "${admin[@]}" "http://127.0.0.1:$1/admin/v1/budgets" \
      -d '{"scope":"key","subject":"bench","period":"month","limit_usd":"1000000"}' &&
    "${admin[@]}" "http://127.0.0.1:$1/admin/v1/limits" -d '{"scope":"key","subject":"bench","rpm":1000000000}' &&
    "${admin[@]}" "http://127.0.0.1:$1/admin/v1/limits" -d '{"scope":"team","subject":"bench","tpm":1000000000000}'
}

# shared_engines_start : a throwaway PostgreSQL (as the postgres user when root) and Redis, on the
# load's CPU (what they cost is theirs, not the gateway's: reported apart in shared-engines.txt).
shared_engines_start() {
  local pgbin dir=$RUN_DIR/shared-pg as=()
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -x $pgbin/initdb ]] || { log "switchyard-shared needs PostgreSQL (apt-get install postgresql)"; return 1; }
  command -v redis-server >/dev/null || { log "switchyard-shared needs redis-server"; return 1; }
  rm -rf "$dir"; mkdir -p "$dir"
  if [[ $(id -u) == 0 ]]; then chown postgres "$dir"; chmod 755 "$RUN_DIR"; as=(runuser -u postgres --); fi
  "${as[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$RUN_DIR/shared-pg-init.log" 2>&1 ||
    { log "initdb failed: $(tail -3 "$RUN_DIR/shared-pg-init.log")"; return 1; }
  "${PIN_LOAD[@]}" "${as[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $SHARED_PG_PORT -k $dir -c listen_addresses=127.0.0.1" start >/dev/null ||
    { log "PostgreSQL did not start: $(tail -3 "$dir/log")"; return 1; }
  proc_start shared-redis "$RUN_DIR/shared-redis.log" "${PIN_LOAD[@]}" redis-server --port "$SHARED_REDIS_PORT" \
    --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN_DIR"
  local i; for i in $(seq 50); do redis-cli -p "$SHARED_REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  log "redis-server did not start"; return 1
}
shared_engines_stop() {
  local pgbin dir=$RUN_DIR/shared-pg as=()
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ $(id -u) == 0 ]] && as=(runuser -u postgres --)
  [[ -d $dir/data ]] && "${as[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
  proc_stop shared-redis
}
sys_stop() {
  case $1 in
    nginx) proc_stop nginx-proxy ;;
    switchyard-governed) proc_stop switchyard-governed ;;
    switchyard-shared) proc_stop switchyard-shared; shared_engines_stop ;;
    switchyard*) proc_stop switchyard ;;
  esac
  [[ $1 == direct ]] || wait_port_free "$(sys_port "$1")" || log "port $(sys_port "$1") still busy"
}
# sys_pid SYSTEM : root pid of the proxy under test (nothing for direct)
sys_pid() {
  case $1 in
    nginx) cat "$RUN_DIR/nginx-proxy.pid" 2>/dev/null ;;
    switchyard-governed) cat "$RUN_DIR/switchyard-governed.pid" 2>/dev/null ;;
    switchyard-shared) cat "$RUN_DIR/switchyard-shared.pid" 2>/dev/null ;;
    switchyard*) cat "$RUN_DIR/switchyard.pid" 2>/dev/null ;;
  esac
}
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

# body_for SYSTEM MODE KIND : a request body file with the right "stream" and "model"
body_for() {
  local src=$BENCH_DIR/request.json model f
  [[ $2 == sse ]] && src=$BENCH_DIR/request-stream.json
  model=$(sys_model "$1" "$3")
  f=$RUN_DIR/body-$2-$model.json
  [[ -f $f ]] || sed "s/\"model\":\"gpt-4o-mini\"/\"model\":\"$model\"/" "$src" >"$f"
  echo "$f"
}

# ------------------------------------------------------------------------ measuring ---
# verify SYSTEM MODE : one request with curl; is it the mock's chat completion, whole?
verify() {
  local url body
  url=$(sys_url "$1" fast); body=$(body_for "$1" "$2" fast)
  curl -s -m 10 -o "$RUN_DIR/verify.body" -D "$RUN_DIR/verify.headers" "$url" \
    -H 'Content-Type: application/json' -H "$AUTH" --data-binary @"$body"
  python3 "$BENCH_DIR/check_response.py" "$2" "$RUN_DIR/verify.headers" "$RUN_DIR/verify.body" \
    "$RUN_DIR/chat.json"
}

# probe SYSTEM : 5 sequential streams from the /slow/ upstream (20 events 5 ms apart). A proxy
# that buffers shows a time to first byte close to the total. Prints "ttfb_ms total_ms" medians.
probe() {
  local url body i
  url=$(sys_url "$1" slow); body=$(body_for "$1" sse slow)
  for i in 1 2 3 4 5; do
    curl -s -N -m 10 -o /dev/null -w '%{http_code} %{time_starttransfer} %{time_total}\n' "$url" \
      -H 'Content-Type: application/json' -H "$AUTH" --data-binary @"$body"
  done | python3 -c '
import statistics as st, sys
ok = [l.split() for l in sys.stdin if l.startswith("200 ")]
print(" ".join(f"{st.median(float(r[i]) for r in ok) * 1000:.2f}" for i in (1, 2)) if ok else "null null")'
}

# one_run SYSTEM MODE CONNS SECONDS RECORD REP : one wrk run, a JSON line into raw.jsonl
one_run() {
  local s=$1 mode=$2 c=$3 secs=$4 record=$5 rep=$6 spid t0 t1 l0 l1 u0 u1 res tu0=0 tk0=0 tu1=0 tk1=0
  spid=$(sys_pid "$s")
  res=$RUN_DIR/wrk.result; rm -f "$res"
  read -r l0 lt0 < <(cpu_jiffies "$LOAD_CPU"); read -r u0 ut0 < <(cpu_jiffies "$SUT_CPU")
  alive "$spid" && read -r tu0 tk0 < <(tree_cpu_split "$spid")
  BENCH_BODY=$(body_for "$s" "$mode" fast) BENCH_HEADERS=$AUTH BENCH_RESULT=$res \
    BENCH_TAG="$s/$mode/c$c/r$rep" "${PIN_LOAD[@]}" wrk -t"$WRK_THREADS" -c"$c" -d"${secs}s" \
      --timeout 10s --latency -s "$BENCH_DIR/chat.lua" "$(sys_url "$s" fast)" >"$RUN_DIR/wrk.out" 2>&1
  alive "$spid" && read -r tu1 tk1 < <(tree_cpu_split "$spid")
  t0=$((tu0 + tk0)); t1=$((tu1 + tk1))
  read -r l1 lt1 < <(cpu_jiffies "$LOAD_CPU"); read -r u1 ut1 < <(cpu_jiffies "$SUT_CPU")
  [[ $record == 1 ]] || return 0
  cat "$RUN_DIR/wrk.out" >>"$RUN_DIR/wrk.log"
  if [[ ! -s $res ]]; then
    log "  wrk gave no result for $s/$mode/c$c:"; tail -3 "$RUN_DIR/wrk.out" >&2; return 1
  fi
  local sut_s=null sut_sys_s=null
  if [[ -n $spid ]]; then
    sut_s=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.4f", (b - a) / hz }')
    sut_sys_s=$(awk -v a="$tk0" -v b="$tk1" -v hz="$CLK_TCK" 'BEGIN { printf "%.4f", (b - a) / hz }')
  fi
  printf '{"type":"run","system":"%s","mode":"%s","conns":%d,"rep":%d,"sut_cpu_s":%s,"sut_sys_s":%s,"load_cpu_busy":%s,"sut_cpu_busy":%s,"wrk":%s}\n' \
    "$s" "$mode" "$c" "$rep" "$sut_s" "$sut_sys_s" \
    "$(awk -v a="$l0" -v b="$l1" -v c="$lt0" -v d="$lt1" 'BEGIN { printf "%.3f", (d > c) ? (b - a) / (d - c) : 0 }')" \
    "$(awk -v a="$u0" -v b="$u1" -v c="$ut0" -v d="$ut1" 'BEGIN { printf "%.3f", (d > c) ? (b - a) / (d - c) : 0 }')" \
    "$(cat "$res")" >>"$RUN_DIR/raw.jsonl"
  python3 - "$res" "$sut_s" >&2 <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); cpu = sys.argv[2]
errs = sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
us = f"{float(cpu) / r['requests'] * 1e6:.0f}" if cpu != "null" and r["requests"] else "-"
print(f"  {r['tag']:<24} {r['rps']:>9,.0f} req/s  p50 {r['lat_p50_ms']:.3f} ms  "
      f"p99 {r['lat_p99_ms']:.3f} ms  proxy {us} us/req  errors {errs}")
EOF
}

# session REP MODE SYSTEM : fresh start, idle RSS, verify (+ probe), warm-up, every CONNS, peak RSS
session() {
  local rep=$1 mode=$2 s=$3 spid v rss0=null hwm=null probe_r="null null" crashed=false c
  log "rep $rep/$REPS  $mode  $s"
  if [[ $s != direct ]] && ! wait_port_free "$(sys_port "$s")"; then
    log "  port $(sys_port "$s") is busy: not starting $s"; return 1
  fi
  if ! sys_start "$s"; then
    log "  $s did not start"; sys_stop "$s"
    printf '{"type":"session","system":"%s","mode":"%s","rep":%d,"verify":"FAIL:did-not-start"}\n' \
      "$s" "$mode" "$rep" >>"$RUN_DIR/raw.jsonl"
    return 1
  fi
  spid=$(sys_pid "$s")
  alive "$spid" && rss0=$(tree_status_kb "$spid" VmRSS)
  v=$(verify "$s" "$mode"); log "  verify: $v"
  [[ $mode == sse && $s != switchyard-* ]] && probe_r=$(probe "$s")
  if [[ $v != FAIL* ]]; then
    ((WARMUP > 0)) && one_run "$s" "$mode" 16 "$WARMUP" 0 "$rep"
    for c in $CONNS; do
      one_run "$s" "$mode" "$c" "$DURATION" 1 "$rep"
      sleep 0.5
    done
  fi
  if [[ -n $spid ]]; then
    if alive "$spid"; then hwm=$(tree_status_kb "$spid" VmHWM)
    else crashed=true; log "  $s (pid $spid) is gone: it crashed"; fi
  fi
  read -r ttfb total <<<"$probe_r"
  # the binary's mtime: shows when it was rebuilt in the middle of a run
  printf '{"type":"session","system":"%s","mode":"%s","rep":%d,"verify":"%s","rss_idle_kb":%s,"peak_rss_kb":%s,"probe_ttfb_ms":%s,"probe_total_ms":%s,"crashed":%s,"binary_mtime":"%s"}\n' \
    "$s" "$mode" "$rep" "${v//\"/\'}" "$rss0" "$hwm" "$ttfb" "$total" "$crashed" \
    "$([[ $s == switchyard* ]] && date -r "$SWITCHYARD_BIN" +%H:%M:%S)" >>"$RUN_DIR/raw.jsonl"
  sys_stop "$s"
}

# streams SYSTEM : STREAMS paced streams at once through SYSTEM (bench/streams.mjs)
streams_test() {
  local s=$1 spid pids t0 t1 rss0=null hwm=null nofile=null crashed=false res=$RUN_DIR/streams.result
  local interval_ms
  interval_ms=$(awk -v i="$STREAM_INTERVAL" 'BEGIN { printf "%d", i * 1000 }')
  log "streams  $s  $STREAMS streams, 20 events ${STREAM_INTERVAL}s apart, opened at $STREAM_RATE/s"
  if [[ $s != direct ]] && ! wait_port_free "$(sys_port "$s")"; then
    log "  port $(sys_port "$s") is busy: not starting $s"; return 1
  fi
  # nginx preallocates worker_connections: give it room for two per stream (client + upstream)
  # plus slack (with exactly two it starts "reusing connections", i.e. resetting some)
  local wc=$((3 * STREAMS + 1024)); ((wc < 8192)) && wc=8192
  sed "s/worker_connections [0-9]*;/worker_connections $wc;/" "$BENCH_DIR/nginx-proxy.conf" \
    >"$RUN_DIR/nginx-proxy-streams.conf"
  NGX_PROXY_CONF=$RUN_DIR/nginx-proxy-streams.conf sys_start "$s" ||
    { log "  $s did not start"; sys_stop "$s"; return 1; }
  spid=$(sys_pid "$s")
  if [[ -n $spid ]]; then
    rss0=$(tree_status_kb "$spid" VmRSS)
    pids=$(descendants "$spid" | paste -sd,)
    nofile=$(awk '/^Max open files/ { print $4 }' "/proc/$spid/limits")   # soft limit
    t0=$(tree_cpu_ticks "$spid")
  fi
  rm -f "$res"
  "${PIN_LOAD[@]}" node "$BENCH_DIR/streams.mjs" --url "$(sys_url "$s" paced)" \
    --body "$(body_for "$s" sse paced)" --header "$AUTH" --streams "$STREAMS" --rate "$STREAM_RATE" \
    --events 21 --interval-ms "$interval_ms" ${pids:+--pids "$pids"} --out "$res" >/dev/null
  if [[ -n $spid ]]; then
    if alive "$spid"; then
      t1=$(tree_cpu_ticks "$spid"); hwm=$(tree_status_kb "$spid" VmHWM)
    else
      crashed=true; t1=$t0; log "  $s (pid $spid) is gone: it crashed"
    fi
  fi
  if [[ -s $res ]]; then
    printf '{"type":"streams","system":"%s","rss_idle_kb":%s,"peak_rss_kb":%s,"sut_nofile":%s,"sut_cpu_s":%s,"crashed":%s,"binary_mtime":"%s","client":%s}\n' \
      "$s" "$rss0" "$hwm" "${nofile:-null}" \
      "$([[ -n $spid ]] && awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / hz }' || echo null)" \
      "$crashed" "$([[ $s == switchyard ]] && date -r "$SWITCHYARD_BIN" +%H:%M:%S)" "$(cat "$res")" >>"$RUN_DIR/raw.jsonl"
    python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read()); print("  complete %(complete)s/%(streams)s failed %(failed)s hung %(hung)s stalled %(stalled)s peak open %(peak_open)s max gap %(gap_max_ms)s ms; errors %(errors)s" % r)' "$res" >&2
  else
    log "  the streams client gave no result"
  fi
  sys_stop "$s"
}

write_env() {
  {
    echo "date: $(date -Is)"
    echo "host: $(uname -srm), $(nproc) CPUs: $(lscpu | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }')"
    echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "switchyard config: $SWITCHYARD_CONFIG"
    echo "switchyard: $("$SWITCHYARD_BIN" --version 2>&1) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ', src modified'))"
    echo "nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/.*: //'); wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); node: $(node -v)"
    echo "pinning: $([[ $PIN == 1 ]] && echo "wrk, node client and upstream on CPU $LOAD_CPU; proxy under test on CPU $SUT_CPU" || echo none)"
    echo "runs: DURATION=${DURATION}s WARMUP=${WARMUP}s REPS=$REPS CONNS='$CONNS' MODES='$MODES' SYSTEMS='$SYSTEMS' WRK_THREADS=$WRK_THREADS"
    echo "streams: STREAMS=$STREAMS STREAM_SYSTEMS='$STREAM_SYSTEMS' STREAM_INTERVAL=${STREAM_INTERVAL}s STREAM_RATE=$STREAM_RATE/s"
    echo "open files limit: $(ulimit -n) (hard $(ulimit -Hn))"
    echo "cpuidle: $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo '?')$(
      [[ -r $HALT_POLL ]] && echo ", guest_halt_poll_ns $(cat "$HALT_POLL")$([[ -f $RUN_DIR/halt_poll_ns.orig ]] &&
        echo " (set for this run; the machine's: $(cat "$RUN_DIR/halt_poll_ns.orig"))")")"
  } >"$RUN_DIR/env.txt"
}

# HALT_POLL_NS: set the guest's halt polling for the run (the old value is restored by cleanup).
halt_poll_set() {
  [[ -n $HALT_POLL_NS ]] || return 0
  [[ -w $HALT_POLL ]] || { log "HALT_POLL_NS: cannot write $HALT_POLL (not a haltpoll guest, or not root)"; return 1; }
  cat "$HALT_POLL" >"$RUN_DIR/halt_poll_ns.orig"
  echo "$HALT_POLL_NS" >"$HALT_POLL" || return 1
  log "guest_halt_poll_ns set to $HALT_POLL_NS for this run (was $(cat "$RUN_DIR/halt_poll_ns.orig"))"
}

preflight() {
  local missing=() t
  for t in $SYSTEMS $STREAM_SYSTEMS; do
    [[ $t =~ ^(direct|nginx|switchyard|switchyard-anthropic|switchyard-gemini|switchyard-governed|switchyard-shared)$ ]] ||
      { log "unknown system '$t' (direct, nginx, switchyard, switchyard-anthropic, switchyard-gemini, switchyard-governed, switchyard-shared)"; return 1; }
  done
  for t in $MODES; do [[ $t =~ ^(json|sse)$ ]] || { log "unknown mode '$t' (json, sse)"; return 1; }; done
  for t in wrk node python3 curl taskset ps; do command -v "$t" >/dev/null || missing+=("$t"); done
  [[ -x $NGINX_BIN ]] || missing+=(nginx)
  [[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ]] || missing+=("nginx echo module")
  if ((${#missing[@]})); then
    log "missing: ${missing[*]} (Debian: ./scripts/install-deps.sh --bench)"; return 1
  fi
  [[ -x $SWITCHYARD_BIN ]] || { log "no $SWITCHYARD_BIN: build first (make build)"; return 1; }
  if [[ $PIN == 1 ]] && ! taskset -c "$LOAD_CPU,$SUT_CPU" true 2>/dev/null; then
    log "cannot pin to CPUs $LOAD_CPU and $SUT_CPU (need two CPUs); set PIN=0 or LOAD_CPU/SUT_CPU"; return 1
  fi
  local port busy=()
  for port in 18080 18090 "$SWITCHYARD_PORT"; do port_busy "$port" && busy+=("$port"); done
  if ((${#busy[@]})); then
    log "port(s) ${busy[*]} already in use (another benchmark? ./bench/run.sh stop); SWITCHYARD_PORT picks Switchyard's"
    return 1
  fi
  # Every stream holds a client and an upstream socket in the proxy: about 2 descriptors each.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null
  if ((STREAMS > 0)) && (( $(ulimit -n) < 2 * STREAMS + 64 )); then
    log "WARNING: open files limit $(ulimit -n) < $((2 * STREAMS + 64)) needed by the proxy for $STREAMS streams;"
    log "         the last streams will fail for lack of descriptors (raise the hard limit: ulimit -Hn, LimitNOFILE)"
  fi
}

cleanup() {
  [[ -n ${RUN_DIR:-} && -d ${RUN_DIR:-} ]] || return 0
  proc_stop switchyard; proc_stop nginx-proxy; proc_stop nginx-upstream
  if [[ -f $RUN_DIR/halt_poll_ns.orig ]]; then
    cat "$RUN_DIR/halt_poll_ns.orig" >"$HALT_POLL" 2>/dev/null && mv "$RUN_DIR/halt_poll_ns.orig" "$RUN_DIR/halt_poll_ns.restored"
  fi
}

# begin_run : a results folder (RUN_DIR, STAMP), clean-up on exit, halt polling, env.txt and the
# mock upstream up
begin_run() {
  STAMP=$(date +%Y%m%d-%H%M%S); START=$(date +%s)
  RUN_DIR=$OUT/$STAMP
  mkdir -p "$RUN_DIR"/tmp/{upstream,proxy}
  echo "$RUN_DIR" >"$OUT/.current"     # for `run.sh stop` after an interruption
  trap 'cleanup; exit 130' INT TERM
  trap cleanup EXIT
  halt_poll_set || exit 1
  write_env
  python3 "$BENCH_DIR/gen_upstream.py" "$RUN_DIR" --paced-interval "$STREAM_INTERVAL" \
    --worker-connections $((STREAMS + 8192)) || exit 1
  ngx_start nginx-upstream "$RUN_DIR/nginx-upstream.conf" "${PIN_LOAD[@]}" &&
    wait_http "$UPSTREAM/health" 10 || { log "mock upstream did not start"; exit 1; }
  log "results in $RUN_DIR"
}

# end_run : the mock upstream stopped, the report written, linked as latest and shown
end_run() {
  proc_stop nginx-upstream
  echo "wall: $(($(date +%s) - START)) s" >>"$RUN_DIR/env.txt"
  python3 "$BENCH_DIR/report.py" "$RUN_DIR" >"$OUT/$STAMP.md"
  cp "$OUT/$STAMP.md" "$RUN_DIR/report.md"
  ln -sfn "$STAMP" "$OUT/latest"
  cat "$OUT/$STAMP.md"
  log "report: $OUT/$STAMP.md (raw data and logs: $RUN_DIR/); wall time $(($(date +%s) - START)) s"
}

do_run() {
  preflight || exit 1
  local rep mode i n s sys
  begin_run

  sys=($SYSTEMS); n=${#sys[@]}
  for rep in $(seq "$REPS"); do
    for mode in $MODES; do
      # rotate the order each repetition (A B C, B C A, ...): drift on a shared machine
      # then does not always hit the same system
      for i in $(seq 0 $((n - 1))); do
        session "$rep" "$mode" "${sys[$(((i + rep - 1) % n))]}"
      done
    done
  done
  if ((STREAMS > 0)); then
    for s in $STREAM_SYSTEMS; do streams_test "$s"; done
  fi
  end_run
}

# pairs : SYSTEMS (two) started once; PAIRS alternating back-to-back runs per mode and CONNS
do_pairs() {
  STREAMS=0; REPS=1; DURATION=$PAIR_SECONDS; SYSTEMS=$PAIR_SYSTEMS
  local sys=($SYSTEMS) mode c i a b s v
  ((${#sys[@]} == 2)) || { log "pairs compares two systems: SYSTEMS=A,B (got '$SYSTEMS')"; exit 2; }
  [[ " $SYSTEMS " == *" direct "* ]] && { log "pairs compares two proxies (direct has no CPU to measure)"; exit 2; }
  # switchyard-governed and -shared are processes of their own (own ports); the other variants share one.
  [[ ${sys[0]} == switchyard* && ${sys[1]} == switchyard* && " $SYSTEMS " != *" switchyard-governed "* &&
     " $SYSTEMS " != *" switchyard-shared "* ]] &&
    { log "pairs: those Switchyard variants share one process; compare one of them with nginx"; exit 2; }
  preflight || exit 1
  begin_run
  echo "pairs: PAIRS=$PAIRS PAIR_SECONDS=${PAIR_SECONDS}s, A=${sys[0]} B=${sys[1]}, both up for the whole run" >>"$RUN_DIR/env.txt"
  local -A rss0 verdict
  for s in "${sys[@]}"; do
    sys_start "$s" || { log "$s did not start"; exit 1; }
    rss0[$s]=$(tree_status_kb "$(sys_pid "$s")" VmRSS)
  done
  for mode in $MODES; do
    for s in "${sys[@]}"; do
      v=$(verify "$s" "$mode"); log "verify $s / $mode: $v"
      [[ $v == FAIL* ]] && exit 1
      verdict[$s]=$v
      ((WARMUP > 0)) && one_run "$s" "$mode" 16 "$WARMUP" 0 0
    done
    for c in $CONNS; do
      for i in $(seq "$PAIRS"); do
        if ((i % 2)); then a=${sys[0]}; b=${sys[1]}; else a=${sys[1]}; b=${sys[0]}; fi
        one_run "$a" "$mode" "$c" "$PAIR_SECONDS" 1 "$i"
        one_run "$b" "$mode" "$c" "$PAIR_SECONDS" 1 "$i"
      done
    done
    for s in "${sys[@]}"; do   # peak RSS so far: this mode's and the modes' before it
      printf '{"type":"session","system":"%s","mode":"%s","rep":1,"verify":"%s","rss_idle_kb":%s,"peak_rss_kb":%s}\n' \
        "$s" "$mode" "${verdict[$s]//\"/\'}" "${rss0[$s]}" "$(tree_status_kb "$(sys_pid "$s")" VmHWM)" >>"$RUN_DIR/raw.jsonl"
    done
  done
  for s in "${sys[@]}"; do alive "$(sys_pid "$s")" || log "$s is gone: it crashed"; sys_stop "$s"; done
  printf '{"type":"pairs","a":"%s","b":"%s","pairs":%d,"seconds":%s}\n' "${sys[0]}" "${sys[1]}" "$PAIRS" "$PAIR_SECONDS" >>"$RUN_DIR/raw.jsonl"
  end_run
}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

CLK_TCK=$(getconf CLK_TCK)
HALT_POLL=/sys/module/haltpoll/parameters/guest_halt_poll_ns
HALT_POLL_NS=${HALT_POLL_NS:-}
PAIRS=${PAIRS:-20}
PAIR_SECONDS=${PAIR_SECONDS:-5}; PAIR_SECONDS=${PAIR_SECONDS%s}
case ${1:-run} in
  run) do_run ;;
  pairs) do_pairs ;;
  report) python3 "$BENCH_DIR/report.py" "${2:-$OUT/latest}" ;;
  stop) RUN_DIR=$(cat "$OUT/.current" 2>/dev/null) && cleanup ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
