#!/usr/bin/env bash
# The sanitizer half of CI (docs/security.md, "Sanitizers and fuzzing"):
#   1. AddressSanitizer + UndefinedBehaviorSanitizer (GCC): the unit, integration and SDK tests,
#      the gateway and the fake provider they start included, in build-asan;
#   2. every libFuzzer target (clang, ASan + UBSan), FUZZ_SECONDS each, on its committed corpus,
#      in build-fuzz (tests/fuzz/run.sh);
#   3. ThreadSanitizer (GCC): the unit tests of what threads share (health registry, decision
#      ring, counters and limits, ledger writer, the task frame cache), in build-tsan.
# Any report fails the run. Prints how the time split.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
ASAN_DIR=${ASAN_BUILD_DIR:-build-asan}
TSAN_DIR=${TSAN_BUILD_DIR:-build-tsan}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
split=()
phase() {  # phase NAME START
  split+=("$1 $(( SECONDS - $2 ))s")
}

t=$SECONDS
if [ ! -f "$ASAN_DIR/build.ninja" ]; then
  # -O1 and line tables only: the reports' stacks keep their lines, the build takes half the time.
  cmake -S . -B "$ASAN_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS="-O1 -g1" -DSWITCHYARD_SANITIZE=address,undefined \
    -DSWITCHYARD_BENCH=OFF -DSWITCHYARD_MIMALLOC=OFF >/dev/null
fi
ninja -C "$ASAN_DIR" -j"$JOBS"
phase "asan+ubsan build" $t

t=$SECONDS
# Reports go to files as well as failing what they abort: a gateway or fake provider started by a
# test may die of one where the test itself would not notice. Any report fails the run.
reports=$PWD/$ASAN_DIR/sanitizer-reports
rm -rf "$reports" && mkdir -p "$reports"
(cd "$ASAN_DIR" && ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$reports/asan" UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$reports/ubsan" \
  ctest --output-on-failure --timeout 900)
if [ -n "$(ls -A "$reports")" ]; then
  head -c 20000 "$reports"/*
  echo "check-sanitizers: sanitizer reports above (in $reports)"
  exit 1
fi
phase "asan+ubsan tests" $t

t=$SECONDS
./tests/fuzz/run.sh
phase "fuzzing" $t

t=$SECONDS
if [ ! -f "$TSAN_DIR/build.ninja" ]; then
  cmake -S . -B "$TSAN_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS="-O1 -g1" -DSWITCHYARD_SANITIZE=thread \
    -DSWITCHYARD_BENCH=OFF -DSWITCHYARD_MIMALLOC=OFF >/dev/null
fi
ninja -C "$TSAN_DIR" -j"$JOBS" unit_tests
phase "tsan build" $t
t=$SECONDS
"$TSAN_DIR/tests/unit_tests" --gtest_filter="${TSAN_FILTER:-*}"
phase "tsan tests" $t

echo "check-sanitizers: passed; time: $(IFS=,; echo "${split[*]}" | sed 's/,/, /g')"
