#!/usr/bin/env bash
# Records the upstream wire answers the golden suite replays (tests/golden/upstream/), from the
# project's fake provider, which answers in each API's documented shape. Run after changing the
# fake's answers:  tests/golden/record.sh build/switchyard-fake-provider
set -euo pipefail
fake=${1:-build/switchyard-fake-provider}
out=$(cd "$(dirname "$0")" && pwd)/upstream
tmp=$(mktemp -d)
"$fake" --port 0 --port-file "$tmp/port" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do [[ -s $tmp/port ]] && break; sleep 0.1; done
port=$(cat "$tmp/port")
declare -A behaviors=(
  [text]='{"content":"The capital of France is Paris.","chunks":3}'
  [tools]='{"content":"","tool_calls":[{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}"},{"name":"get_time","arguments":"{\"tz\":\"Europe/Paris\"}"}]}'
  [thinking]='{"content":"42.","chunks":2,"reasoning":"The user asks for the answer; it is 42.","cached_tokens":3}'
  [json]='{"content":"{\"name\":\"Ada\",\"age\":36}","chunks":2}'
  [length]='{"content":"This answer was cut","chunks":2,"finish_reason":"length"}'
  [ratelimited]='{"status":429}'
)
for kind in "${!behaviors[@]}"; do
  streams="false true"
  [[ $kind == ratelimited ]] && streams=false
  for stream in $streams; do
    ext=$([[ $stream == true ]] && echo sse || echo json)
    for dialect in openai anthropic gemini; do
      curl -s "localhost:$port/_fake/script" -d "{\"behavior\":${behaviors[$kind]}}" >/dev/null
      case $dialect in
        openai) path=/v1/chat/completions; hdr=(-H 'Authorization: Bearer k')
                body="{\"model\":\"test-model\",\"stream\":$stream,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}"
                [[ $stream == false ]] && body='{"model":"test-model","messages":[{"role":"user","content":"q"}]}' ;;
        anthropic) path=/v1/messages; hdr=(-H 'x-api-key: k' -H 'anthropic-version: 2023-06-01')
                body="{\"model\":\"test-model\",\"max_tokens\":100,\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}" ;;
        gemini) hdr=(-H 'x-goog-api-key: k')
                if [[ $stream == true ]]; then path="/v1beta/models/test-model:streamGenerateContent?alt=sse"; else path=/v1beta/models/test-model:generateContent; fi
                body='{"contents":[{"role":"user","parts":[{"text":"q"}]}]}' ;;
      esac
      curl -s "localhost:$port$path" "${hdr[@]}" -d "$body" > "$out/$kind.$dialect.$ext"
    done
  done
done
echo "recorded into $out"
