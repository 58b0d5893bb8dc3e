#!/usr/bin/env bash
# Held-out evaluation of the complexity classifier, as reported in docs/routing-quality.md:
# MMLU split into 5 parts by subject (train on 4, test on the 5th), and each RouterBench
# benchmark held out in turn. Deterministic (fixed seeds). Writes the PGR plots to docs/img/.
#   ./scripts/eval-router.sh [DATA_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/build/switchyard}
DATA=${1:-/work/shared/data/routing}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
echo "## MMLU ($DATA/routellm_mmlu.jsonl), subjects held out in 5 parts"
for k in 0 1 2 3 4; do
  "$BIN" router train --data "$DATA/routellm_mmlu.jsonl" --holdout "$k/5" --out "$TMP/mmlu$k.bin" >/dev/null
  "$BIN" router eval --model "$TMP/mmlu$k.bin" --data "$DATA/routellm_mmlu.jsonl" --holdout "$k/5" \
    --svg "$ROOT/docs/img/pgr-mmlu-part$k.svg" | grep -v "curve written"
done
echo
echo "## RouterBench ($DATA/routerbench_train.jsonl), each benchmark held out; gpt-4-1106-preview vs mixtral-8x7b"
for b in arc-challenge winogrande mbpp; do
  "$BIN" router train --data "$DATA/routerbench_train.jsonl" --strong gpt-4-1106-preview \
    --weak mistralai/mixtral-8x7b-chat --holdout-category "$b" --out "$TMP/rb.bin" >/dev/null
  "$BIN" router eval --model "$TMP/rb.bin" --data "$DATA/routerbench_train.jsonl" --holdout-category "$b" \
    --svg "$ROOT/docs/img/pgr-routerbench-$b.svg" | grep -v "curve written"
done
echo
echo "## RouterBench, 11 models with costs (a head per model), each benchmark held out: the quality-cost curve"
for b in arc-challenge winogrande mbpp; do
  echo "### $b held out"
  "$BIN" router train --data "$DATA/routerbench_train.jsonl" --strong gpt-4-1106-preview \
    --weak mistralai/mixtral-8x7b-chat --all-models --holdout-category "$b" --out "$TMP/rball.bin" >/dev/null 2>&1
  "$BIN" router eval --model "$TMP/rball.bin" --data "$DATA/routerbench_train.jsonl" --holdout-category "$b" \
    --cost-svg "$ROOT/docs/img/cost-routerbench-$b.svg" | sed -n '/models on/,$p' | grep -v "curve written"
done
