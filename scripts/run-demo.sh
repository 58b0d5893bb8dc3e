#!/usr/bin/env bash
# Starts the bundled demo provider and the gateway on config/quickstart.yaml (Ctrl-C stops both).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
export SWITCHYARD_PORT=${SWITCHYARD_PORT:-8080}
export SWITCHYARD_DEMO_PORT=${SWITCHYARD_DEMO_PORT:-8081}

"$BUILD/switchyard-fake-provider" --port "$SWITCHYARD_DEMO_PORT" &
demo=$!
trap 'kill $demo 2>/dev/null || true' EXIT

cat <<MSG

  Switchyard is starting on http://127.0.0.1:$SWITCHYARD_PORT  (demo provider on :$SWITCHYARD_DEMO_PORT)
  Try:
    curl http://127.0.0.1:$SWITCHYARD_PORT/v1/chat/completions \\
      -H 'Authorization: Bearer sk-switchyard-demo' -H 'Content-Type: application/json' \\
      -d '{"model":"auto","messages":[{"role":"user","content":"Hello!"}]}'

MSG
"$BUILD/switchyard" serve --config config/quickstart.yaml
