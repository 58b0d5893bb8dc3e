#!/usr/bin/env bash
# Starts the bundled demo provider and the gateway on config/quickstart.yaml (Ctrl-C stops both).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
export SWITCHYARD_PORT=${SWITCHYARD_PORT:-8080}
export SWITCHYARD_DEMO_PORT=${SWITCHYARD_DEMO_PORT:-8081}
run=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$run"' EXIT
trap 'exit 0' INT TERM

"$BUILD/switchyard" check --config config/quickstart.yaml
"$BUILD/switchyard-fake-provider" --port "$SWITCHYARD_DEMO_PORT" &
pids+=($!)
"$BUILD/switchyard" serve --config config/quickstart.yaml --port-file "$run/port" &
pids+=($!)

for _ in $(seq 100); do
  [ -s "$run/port" ] && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "the gateway did not start (see above)" >&2; exit 1; }
  sleep 0.1
done
cat <<MSG

  Switchyard is running on http://127.0.0.1:$SWITCHYARD_PORT (demo provider on :$SWITCHYARD_DEMO_PORT).
  Try:
    curl http://127.0.0.1:$SWITCHYARD_PORT/v1/chat/completions \\
      -H 'Authorization: Bearer sk-switchyard-demo' -H 'Content-Type: application/json' \\
      -d '{"model":"auto","messages":[{"role":"user","content":"Hello!"}]}'
  Teams, keys, budgets and spend (docs/governance.md):
    SWITCHYARD_URL=http://127.0.0.1:$SWITCHYARD_PORT SWITCHYARD_ADMIN_KEY=sk-switchyard-admin \
      $BUILD/switchyard admin spend --group-by key
  Ctrl-C stops it.

MSG
wait "${pids[1]}"
