#!/usr/bin/env bash
# Where the CPU of governance on shared engines goes: the gateway (switchyard-shared's config)
# and Redis measured apart, per request, at 1, 3 or 5 shared scopes. Not paired and not a
# report: a quick probe for the figures in bench/README.md (session 13). Starts its own mock
# upstream, PostgreSQL and Redis (on the load CPU), the gateway (on the other), runs wrk for
# DURATION seconds after a warm-up, prints gateway and Redis CPU µs per request, stops all.
#   SCOPES=3 (1: the key's budget; 3: + key RPM and team TPM; 5: + team and route budgets)
#   CONNS=16 DURATION=5 REPS=3
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SCOPES=${SCOPES:-3} CONNS=${CONNS:-16} DURATION=${DURATION:-5} REPS=${REPS:-3}
BIN=${SWITCHYARD_BIN:-build/switchyard}
export SHARED_PORT=18415 SHARED_PG_PORT=18420 SHARED_REDIS_PORT=18430
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
for c in wrk nginx redis-server taskset; do command -v $c >/dev/null || { echo "needs $c (./scripts/install-deps.sh --bench)"; exit 1; }; done
[[ -x ${pgbin:-}/initdb ]] || { echo "needs PostgreSQL"; exit 1; }
R=$(mktemp -d /tmp/switchyard-probe-XXXXXX); chmod 755 "$R"
as=(); [[ $(id -u) == 0 ]] && as=(runuser -u postgres --)
mkdir "$R/pg"; [[ $(id -u) == 0 ]] && chown postgres "$R/pg"
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
  "${as[@]}" "$pgbin/pg_ctl" -D "$R/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  nginx -p "$R/" -c "$R/nginx-upstream.conf" -s stop 2>/dev/null || true
  rm -rf "$R"
}
trap cleanup EXIT

python3 bench/gen_upstream.py "$R" >/dev/null
mkdir -p "$R"/tmp/{upstream,proxy}
taskset -c 0 nginx -p "$R/" -c "$R/nginx-upstream.conf"
"${as[@]}" "$pgbin/initdb" -D "$R/pg/data" -U postgres -A trust --no-sync >/dev/null
taskset -c 0 "${as[@]}" "$pgbin/pg_ctl" -D "$R/pg/data" -l "$R/pg/log" -w \
  -o "-p $SHARED_PG_PORT -k $R/pg -c listen_addresses=127.0.0.1" start >/dev/null
taskset -c 0 redis-server --port $SHARED_REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$R" >"$R/redis.log" 2>&1 &
pids+=($!); RP=$!
sleep 0.5
SHARED_SPOOL=$R/spool taskset -c 1 "$BIN" serve --config bench/switchyard-shared.yaml >"$R/gateway.log" 2>&1 &
pids+=($!); GW=$!
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$SHARED_PORT/healthz" && break; sleep 0.1; done
admin=(curl -sf -o /dev/null -H "Authorization: Bearer sk-bench-admin" -H 'Content-Type: application/json')
api=http://127.0.0.1:$SHARED_PORT/admin/v1
"${admin[@]}" $api/teams -d '{"id":"bench"}'
"${admin[@]}" $api/budgets -d '{"scope":"key","subject":"bench","period":"month","limit_usd":"1000000"}'
if ((SCOPES >= 3)); then
  "${admin[@]}" $api/limits -d '{"scope":"key","subject":"bench","rpm":1000000000}'
  "${admin[@]}" $api/limits -d '{"scope":"team","subject":"bench","tpm":1000000000000}'
fi
if ((SCOPES >= 5)); then
  "${admin[@]}" $api/budgets -d '{"scope":"team","subject":"bench","period":"month","limit_usd":"1000000"}'
  "${admin[@]}" $api/budgets -d '{"scope":"route","subject":"gpt-4o-mini-shared","period":"day","limit_usd":"1000000"}'
fi
sed 's/"model":"gpt-4o-mini"/"model":"gpt-4o-mini-shared"/' bench/request.json >"$R/body.json"
cat >"$R/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
local f = io.open(os.getenv("BODY")); wrk.body = f:read("*a"); f:close()
LUA
url=http://127.0.0.1:$SHARED_PORT/v1/chat/completions
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tree_ticks() { local t=0 x; for x in /proc/$1/task/*/stat; do t=$((t + $(awk '{print $14 + $15}' "$x"))); done; echo $t; }
BODY=$R/body.json taskset -c 0 wrk -t1 -c"$CONNS" -d2s -s "$R/post.lua" "$url" >/dev/null
hz=$(getconf CLK_TCK)
for rep in $(seq "$REPS"); do
  g0=$(tree_ticks $GW); r0=$(ticks $RP)
  n=$(BODY=$R/body.json taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$R/post.lua" "$url" | awk '/requests in/ {print $1}')
  g1=$(tree_ticks $GW); r1=$(ticks $RP)
  python3 -c "n=$n; print(f'scopes=$SCOPES conns=$CONNS requests={n} gateway {($g1-$g0)*1e6/$hz/n:.1f} µs/req, redis {($r1-$r0)*1e6/$hz/n:.1f} µs/req')"
done
