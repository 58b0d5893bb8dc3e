#!/usr/bin/env bash
# The Responses API passed through (POST /v1/responses to an OpenAI deployment) next to chat
# completions passed through (POST /v1/chat/completions), on the same gateway and the same mock
# upstream (bench/gen_upstream.py: the same answer in each API's shape): the gateway's CPU per
# request, in PAIRS alternating runs of PAIR_SECONDS each (chat then Responses, or the reverse),
# JSON and streams. Pinned as bench/run.sh pins: wrk and the upstream on CPU 0, the gateway on 1.
#
#   ./bench/responses.sh                 # ~2 min
#   PAIRS=10 CONNS=64 ./bench/responses.sh
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
source "$BENCH_DIR/lib.sh"
BIN=${SWITCHYARD_BIN:-$ROOT/build/switchyard}
PAIRS=${PAIRS:-6}
PAIR_SECONDS=${PAIR_SECONDS:-5}
CONNS=${CONNS:-16}
export SWITCHYARD_PORT=${SWITCHYARD_PORT:-18400}
RUN_DIR=$(mktemp -d)
mkdir -p "$RUN_DIR/tmp/upstream"
cleanup() { proc_stop switchyard; proc_stop nginx-upstream; rm -rf "$RUN_DIR"; }
trap cleanup EXIT

python3 "$BENCH_DIR/gen_upstream.py" "$RUN_DIR" >/dev/null
ngx_start nginx-upstream "$RUN_DIR/nginx-upstream.conf" taskset -c 0
wait_http http://127.0.0.1:18080/health
proc_start switchyard "$RUN_DIR/switchyard.log" taskset -c 1 "$BIN" serve --config "$BENCH_DIR/switchyard.yaml" --no-watch
wait_http "http://127.0.0.1:$SWITCHYARD_PORT/healthz"
GW=$(cat "$RUN_DIR/switchyard.pid")
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# one PATH BODY -> "requests cpu_us_per_request"
one() {
  local before after res=$RUN_DIR/one.jsonl
  rm -f "$res"
  before=$(tree_cpu_ticks "$GW")
  BENCH_BODY=$2 BENCH_HEADERS="Authorization: Bearer sk-bench" BENCH_RESULT=$res \
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${PAIR_SECONDS}s" -s "$BENCH_DIR/chat.lua" \
    "http://127.0.0.1:$SWITCHYARD_PORT$1" >/dev/null
  after=$(tree_cpu_ticks "$GW")
  python3 -c "
import json, sys
r = json.loads(open('$res').read().splitlines()[-1])
bad = r['err_status'] + r['err_read'] + r['err_connect'] + r['err_timeout']
if bad: sys.exit('errors: %s' % r)
print(r['requests'], ($after - $before) * $TICK_US / r['requests'])"
}

echo "Responses pass-through next to chat pass-through: gateway CPU µs per request, $CONNS connections, $PAIRS pairs of ${PAIR_SECONDS} s"
echo
echo "| mode | chat µs/req (median) | Responses µs/req (median) | ratio median | ratios |"
echo "| --- | ---: | ---: | ---: | --- |"
for mode in json sse; do
  chat_body=$BENCH_DIR/request.json
  resp_body=$BENCH_DIR/request-responses.json
  if [[ $mode == sse ]]; then
    chat_body=$BENCH_DIR/request-stream.json
    resp_body=$BENCH_DIR/request-responses-stream.json
  fi
  one /v1/chat/completions "$chat_body" >/dev/null  # warm-up
  one /v1/responses "$resp_body" >/dev/null
  chats=() resps=()
  for ((p = 0; p < PAIRS; ++p)); do
    if ((p % 2 == 0)); then
      read -r _ c < <(one /v1/chat/completions "$chat_body"); read -r _ r < <(one /v1/responses "$resp_body")
    else
      read -r _ r < <(one /v1/responses "$resp_body"); read -r _ c < <(one /v1/chat/completions "$chat_body")
    fi
    chats+=("$c") resps+=("$r")
  done
  python3 - "$mode" "${chats[*]}" "${resps[*]}" <<'PY'
import statistics, sys
mode, chats, resps = sys.argv[1], list(map(float, sys.argv[2].split())), list(map(float, sys.argv[3].split()))
ratios = sorted(r / c for c, r in zip(chats, resps))
print("| %s | %.1f | %.1f | %.3f | %s |" % (mode, statistics.median(chats), statistics.median(resps),
      statistics.median(ratios), " ".join("%.2f" % x for x in ratios)))
PY
done
