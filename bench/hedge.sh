#!/usr/bin/env bash
# Hedged requests: the added p99 when the primary deployment stalls, with and without hedging.
#
# Two fake providers: the primary stalls STALL_MS on every STALL_EVERY-th request (a 1-in-N
# slow tail, as providers have), the secondary answers at once. The same route is served twice,
# hedging off and on (`hedge: {delay_ms: HEDGE_DELAY_MS, max_share: 1}`), and wrk measures the
# client's latency distribution at CONNS connections for DURATION seconds each.
#
#   ./bench/hedge.sh                     # defaults below; ~1 min
#   STALL_EVERY=20 STALL_MS=500 ./bench/hedge.sh
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BIN=${BIN:-$ROOT/build/switchyard}
FAKE=${FAKE:-$ROOT/build/switchyard-fake-provider}
STALL_EVERY=${STALL_EVERY:-10}
STALL_MS=${STALL_MS:-300}
BASE_MS=${BASE_MS:-5}
HEDGE_DELAY_MS=${HEDGE_DELAY_MS:-50}
CONNS=${CONNS:-4}
DURATION=${DURATION:-15}
TMP=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do [[ -s $1 ]] && { cat "$1"; return; }; sleep 0.05; done; echo "no port in $1" >&2; exit 1; }

"$FAKE" --port 0 --port-file "$TMP/a.port" \
  --behavior "{\"latency_ms\":$BASE_MS,\"stall_every\":$STALL_EVERY,\"stall_ms\":$STALL_MS}" >/dev/null 2>&1 &
pids+=($!)
"$FAKE" --port 0 --port-file "$TMP/b.port" --behavior "{\"latency_ms\":$BASE_MS}" >/dev/null 2>&1 &
pids+=($!)
A=$(wait_port "$TMP/a.port"); B=$(wait_port "$TMP/b.port")
HASH=$("$BIN" hash-key sk-hedge)

run() {  # run NAME HEDGE_YAML -> "p50 p90 p99 max req/s hedged-share"
  local name=$1 hedge=$2
  cat >"$TMP/$name.yaml" <<YAML
server: {host: 127.0.0.1, port: 0, threads: 1, access_log: $TMP/$name.log}
health: {circuit_breaking: false}
providers:
  a: {base_url: "http://127.0.0.1:$A/v1"}
  b: {base_url: "http://127.0.0.1:$B/v1"}
deployments:
  primary: {provider: a, model: m}
  backup: {provider: b, model: m}
routes:
  r:
    candidates: [primary, backup]
$hedge
keys:
  - {name: bench, sha256: $HASH}
YAML
  "$BIN" serve --config "$TMP/$name.yaml" --port-file "$TMP/$name.port" --no-watch >/dev/null 2>"$TMP/$name.err" &
  local pid=$!; pids+=($pid)
  local port; port=$(wait_port "$TMP/$name.port")
  printf '{"model":"r","messages":[{"role":"user","content":"hedge me"}]}' >"$TMP/body.json"
  BENCH_BODY=$TMP/body.json BENCH_HEADERS="Authorization: Bearer sk-hedge" \
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency -s "$BENCH_DIR/chat.lua" \
    "http://127.0.0.1:$port/v1/chat/completions" >"$TMP/$name.wrk" 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local total hedged
  total=$(grep -c '"type":"access"' "$TMP/$name.log" || true)
  hedged=$(grep -c '"hedged":true' "$TMP/$name.log" || true)
  awk -v t="$total" -v h="$hedged" '
    /^ +50%/ {p50=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2}
    /Latency/ && !lat {max=$4; lat=1}
    END {printf "%s %s %s %s %s %.1f%%\n", p50, p90, p99, max, rps, t ? 100*h/t : 0}' "$TMP/$name.wrk"
}

echo "Hedging: primary stalls ${STALL_MS} ms on 1 in ${STALL_EVERY} requests (base ${BASE_MS} ms), $CONNS connections, ${DURATION} s each"
echo
echo "| route | p50 | p90 | p99 | max | req/s | hedged |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
read -r p50 p90 p99 max rps share < <(run plain "")
echo "| no hedging | $p50 | $p90 | $p99 | $max | $rps | $share |"
read -r p50 p90 p99 max rps share < <(run hedged "    hedge: {delay_ms: $HEDGE_DELAY_MS, max_share: 1}")
echo "| hedge after ${HEDGE_DELAY_MS} ms | $p50 | $p90 | $p99 | $max | $rps | $share |"
read -r p50 p90 p99 max rps share < <(run p95 "    hedge: {max_share: 0.2}")
echo "| hedge after observed p95, ≤ 20% | $p50 | $p90 | $p99 | $max | $rps | $share |"
