#!/usr/bin/env bash
# The fault matrix's latencies (issue 23): one deployment of a three-deployment route has a fault
# on every request, the other two are healthy; N requests from C clients per fault and mode, each
# on a fresh gateway with the default health and timeout settings. Client-side latency to the end
# of the answer (p50, p99, max), and what the clients got. With OLD_BIN set, the same with that
# binary beside (a build of an earlier commit: "before").
#
#   ./bench/faults.sh                                   # ~4 min
#   OLD_BIN=/tmp/old/build/switchyard ./bench/faults.sh  # before and after
#   N=100 C=10 FAULTS="stall,429" MODES=json ./bench/faults.sh
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BIN=${BIN:-$ROOT/build/switchyard}
OLD_BIN=${OLD_BIN:-}
FAKE=${FAKE:-$ROOT/build/switchyard-fake-provider}
N=${N:-100}
C=${C:-10}
MODES=${MODES:-json,stream}
FAULTS=${FAULTS:-healthy,stall,stall-after-empty-event,trickle,429,500}
TMP=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 200); do [[ -s $1 ]] && { head -1 "$1"; return; }; sleep 0.05; done; echo "no port in $1" >&2; exit 1; }

behavior() {
  case $1 in
    healthy) echo '{}' ;;
    stall) echo '{"latency_ms":30000}' ;;
    stall-after-empty-event) echo '{"content_delay_ms":30000}' ;;
    trickle) echo '{"trickle_ms":40,"chunk_delay_ms":200}' ;;
    429) echo '{"status":429,"headers":{"retry-after":"1"}}' ;;
    500) echo '{"status":500}' ;;
  esac
}

start_fake() {  # start_fake NAME BEHAVIOR -> port
  "$FAKE" --port 0 --port-file "$TMP/$1.port" --behavior "$2" >/dev/null 2>&1 &
  pids+=($!)
  wait_port "$TMP/$1.port"
}

B=$(start_fake b '{}')
Cp=$(start_fake c '{}')
HASH=$("$BIN" hash-key sk-faults)

run() {  # run BIN FAULT MODE -> JSON line
  local bin=$1 fault=$2 mode=$3
  rm -f "$TMP/a.port" "$TMP/gw.port"
  "$FAKE" --port 0 --port-file "$TMP/a.port" --behavior "$(behavior "$fault")" >/dev/null 2>&1 &
  local fake=$!
  local A; A=$(wait_port "$TMP/a.port")
  cat >"$TMP/gw.yaml" <<YAML
server: {host: 127.0.0.1, port: 0, threads: 1, access_log: "off"}
providers:
  pa: {base_url: "http://127.0.0.1:$A/v1", api_key: sk-up}
  pb: {base_url: "http://127.0.0.1:$B/v1", api_key: sk-up}
  pc: {base_url: "http://127.0.0.1:$Cp/v1", api_key: sk-up}
deployments:
  a: {provider: pa, model: m}
  b: {provider: pb, model: m}
  c: {provider: pc, model: m}
routes:
  r: {candidates: [a, b, c]}
keys:
  - {name: bench, sha256: $HASH}
YAML
  "$bin" serve --config "$TMP/gw.yaml" --port-file "$TMP/gw.port" --no-watch >/dev/null 2>"$TMP/gw.err" &
  local gw=$!
  local port; port=$(wait_port "$TMP/gw.port")
  python3 "$BENCH_DIR/fault_load.py" "$port" sk-faults "$N" "$C" "$mode"
  kill "$gw" "$fake" 2>/dev/null; wait "$gw" "$fake" 2>/dev/null || true
}

echo "Fault matrix: deployment a of [a, b, c] faulty on every request; $N requests from $C clients per row; defaults"
echo
echo "| fault | mode | binary | p50 | p99 | max | whole | error events | error statuses | broken |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for fault in ${FAULTS//,/ }; do
  for mode in ${MODES//,/ }; do
    [[ $fault == stall-after-empty-event && $mode == json ]] && continue
    for which in ${OLD_BIN:+before} after; do
      bin=$BIN; [[ $which == before ]] && bin=$OLD_BIN
      line=$(run "$bin" "$fault" "$mode")
      python3 - "$fault" "$mode" "$which" "$line" <<'PY'
import json, sys
f, m, w, line = sys.argv[1:5]
v = json.loads(line)
ms = lambda x: "%.0f ms" % x if x < 10000 else "%.1f s" % (x / 1000)
print("| %s | %s | %s | %s | %s | %s | %d | %d | %d | %d |" % (f, m, w, ms(v["p50_ms"]), ms(v["p99_ms"]), ms(v["max_ms"]),
      v["whole"], v["error_event"], v["error_status"], v["broken"]))
PY
    done
  done
done
