#!/usr/bin/env bash
# Runs every libFuzzer target for FUZZ_SECONDS (default 30) on its committed corpus,
# tests/fuzz/seeds/<target>/ (seeds and regression cases), copied to a scratch corpus so that
# what a run finds stays out of the repository. The targets are built by the clang sanitizer
# build (ASan + UBSan + fuzzer instrumentation; SWITCHYARD_SANITIZE in CMakeLists.txt) in
# FUZZ_BUILD_DIR (default build-fuzz), configured here when it is not.
# A crash, leak, timeout or sanitizer report fails the run; the input is kept as
# <build>/fuzz-runs/<target>-crash-* and, once fixed, belongs in tests/fuzz/seeds/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-30}
targets=(${FUZZ_TARGETS:-http1 json translate complexity config model admin})
out=$build/fuzz-runs
mkdir -p "$out"
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSWITCHYARD_SANITIZE=address,undefined -DSWITCHYARD_BENCH=OFF -DSWITCHYARD_MIMALLOC=OFF >/dev/null
fi
ninja -C "$build" -j"${JOBS:-2}" "${targets[@]/%/_fuzz}" >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for target in "${targets[@]}"; do
  corpus=$out/corpus-$target
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp tests/fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
  if ! "$build/fuzz/${target}_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/$target-" "$corpus" >"$out/$target.log" 2>&1; then
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$out/$target.log" | head -8
    echo "fuzz $target: FAILED (log: $out/$target.log)"
    exit 1
  fi
  runs=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$out/$target.log" | grep -oE "[0-9]+$")
  echo "fuzz $target: ${seconds}s, $runs inputs, corpus $(ls "$corpus" | wc -l) (from $(ls tests/fuzz/seeds/"$target" | wc -l) committed)"
done
