#!/usr/bin/env bash
# Held-out evaluation of the complexity classifier, as reported in docs/routing-quality.md:
# MMLU split into 5 parts by subject (train on 4, score the 5th; each part and all pooled), each
# MMLU subject held out alone, and each RouterBench benchmark held out in turn. Deterministic
# (fixed seeds). Writes the PGR plots to docs/img/. About 5 minutes on 2 cores.
#   ./scripts/eval-router.sh [DATA_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/build/switchyard}
DATA=${1:-/work/shared/data/routing}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
echo "## MMLU ($DATA/routellm_mmlu.jsonl), subjects held out in 5 parts"
"$BIN" router cv --data "$DATA/routellm_mmlu.jsonl" --folds 5 --svg "$ROOT/docs/img/pgr-mmlu-pooled.svg" |
  grep -v "curve written"
echo
echo "## MMLU, each subject held out alone (57 parts by hash: a few parts hold 2-3 subjects), pooled"
"$BIN" router cv --data "$DATA/routellm_mmlu.jsonl" --folds 57 | grep -E "pooled|mean APGR"
echo
echo "## MMLU, 5 parts, the variants of docs/routing-quality.md (pooled and mean)"
for variant in "--ensemble 1 --balance 0" "--ensemble 40 --balance 0" "--words" "--hash-bits 16"; do
  echo "### $variant"
  # shellcheck disable=SC2086
  "$BIN" router cv --data "$DATA/routellm_mmlu.jsonl" --folds 5 $variant | grep -E "pooled|mean APGR"
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
echo "## RouterBench in-distribution: each benchmark alone, its rows in 4 parts by id (what surface features can learn of it at all)"
for b in arc-challenge winogrande mbpp; do
  grep "\"category\": \"$b\"" "$DATA/routerbench_train.jsonl" > "$TMP/$b.jsonl"
  echo "### $b"
  "$BIN" router cv --data "$TMP/$b.jsonl" --strong gpt-4-1106-preview --weak mistralai/mixtral-8x7b-chat \
    --split row --folds 4 | grep -E "pooled|mean APGR"
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
