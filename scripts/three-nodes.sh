#!/usr/bin/env bash
# Three gateway nodes sharing one PostgreSQL (store, ledger) and one Redis (budgets, rate
# limits), on this machine, with the demo provider: the topology of docs/scaling.md in one
# command. Throwaway data (a temporary folder); Ctrl-C stops everything and removes it.
#   PORTS="8080 8082 8083"  PG_PORT=5433  REDIS_PORT=6380  DEMO_PORT=8081  BUILD_DIR=build
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
read -r -a ports <<<"${PORTS:-8080 8082 8083}"
PG_PORT=${PG_PORT:-5433} REDIS_PORT=${REDIS_PORT:-6380}
export SWITCHYARD_DEMO_PORT=${DEMO_PORT:-8081}
for b in switchyard switchyard-fake-provider; do
  [[ -x $BUILD/$b ]] || { echo "build first: make build (missing $BUILD/$b)" >&2; exit 1; }
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x ${pgbin:-}/initdb ]] || { echo "PostgreSQL is not installed (./scripts/install-deps.sh)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is not installed (./scripts/install-deps.sh)" >&2; exit 1; }

run=$(mktemp -d /tmp/switchyard-three-XXXXXX)
chmod 755 "$run"
as=()
if [[ $(id -u) == 0 ]]; then as=(runuser -u postgres --); mkdir "$run/pg"; chown postgres "$run/pg"; else mkdir "$run/pg"; fi
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  "${as[@]}" "$pgbin/pg_ctl" -D "$run/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "starting PostgreSQL on :$PG_PORT and Redis on :$REDIS_PORT (data in $run)"
"${as[@]}" "$pgbin/initdb" -D "$run/pg/data" -U postgres -A trust --no-sync >"$run/initdb.log" 2>&1
"${as[@]}" "$pgbin/pg_ctl" -D "$run/pg/data" -l "$run/pg/log" -w \
  -o "-p $PG_PORT -k $run/pg -c listen_addresses=127.0.0.1" start >/dev/null
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$run" >"$run/redis.log" 2>&1 &
pids+=($!)

# The quick start's configuration, its governance on the shared engines.
sed '/^# Teams, keys made through the admin API/,$d' config/quickstart.yaml >"$run/node.yaml"
cat >>"$run/node.yaml" <<YAML
# Shared by every node (docs/scaling.md): the store and ledger in PostgreSQL, the counters in Redis.
governance:
  store: postgres
  postgres:
    url: "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres"
  redis:
    url: redis://127.0.0.1:$REDIS_PORT
  spool_dir: \${SWITCHYARD_SPOOL:-$run/spool}
  admin_keys:
    - name: quickstart-admin
      sha256: 2d44f5bc4518a489b3e03de1f4f97521e715bf8aec4a3b67b1f5d26b3f676f1b   # sk-switchyard-admin
YAML
"$BUILD/switchyard" admin migrate --config "$run/node.yaml"
"$BUILD/switchyard-fake-provider" --port "$SWITCHYARD_DEMO_PORT" >"$run/demo.log" 2>&1 &
pids+=($!)
for i in "${!ports[@]}"; do
  SWITCHYARD_PORT=${ports[$i]} SWITCHYARD_SPOOL=$run/spool-$i \
    "$BUILD/switchyard" serve --config "$run/node.yaml" --port-file "$run/port-$i" >"$run/node-$i.log" 2>&1 &
  pids+=($!)
done
for i in "${!ports[@]}"; do
  for _ in $(seq 100); do [[ -s $run/port-$i ]] && break; sleep 0.1; done
  [[ -s $run/port-$i ]] || { echo "node $i did not start:" >&2; tail -5 "$run/node-$i.log" >&2; exit 1; }
done
cat <<MSG

  Three nodes: ${ports[*]/#/http://127.0.0.1:} (demo provider on :$SWITCHYARD_DEMO_PORT).
  A key and a budget made on one node hold on all of them:
    export SWITCHYARD_ADMIN_KEY=sk-switchyard-admin
    SWITCHYARD_URL=http://127.0.0.1:${ports[0]} $BUILD/switchyard admin keys create --name demo
    SWITCHYARD_URL=http://127.0.0.1:${ports[1]} $BUILD/switchyard admin budgets create \\
      --scope key --subject <key id> --period day --limit 0.05
  then send requests to any node with the key's secret; the spend report is the fleet's:
    SWITCHYARD_URL=http://127.0.0.1:${ports[2]} $BUILD/switchyard admin spend --group-by key
  Logs: $run/node-*.log. Ctrl-C stops everything.

MSG
wait "${pids[1]}"
