#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for FUZZ_SECONDS.
# Not part of `make test` (CI builds with GCC); run by hand or with `make fuzz`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${BUILD_DIR:-build}/fuzz
seconds=${FUZZ_SECONDS:-60}
mkdir -p "$out"
common=(src/core/json_scan.cpp src/core/error.cpp src/core/token_estimate.cpp src/net/http1.cpp src/dialects/openai/chat_request.cpp
        src/dialects/openai/usage.cpp src/dialects/sse.cpp src/dialects/openai/translate.cpp
        src/dialects/anthropic/translate.cpp src/dialects/gemini/translate.cpp
        src/dialects/translate.cpp src/dialects/providers.cpp src/dialects/upstream_error.cpp
        src/routing/complexity/features.cpp src/routing/complexity/category.cpp)
flags=(-std=c++20 -O1 -g -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
for target in http1 json translate complexity; do
  clang++ "${flags[@]}" "tests/fuzz/${target}_fuzz.cpp" "${common[@]}" -lboost_json -o "$out/${target}_fuzz"
  mkdir -p "$out/corpus-$target"
  cp tests/fuzz/seeds/$target/* "$out/corpus-$target/" 2>/dev/null || true
  echo "== $target: ${seconds}s"
  if ! "$out/${target}_fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$out/$target-" "$out/corpus-$target" > "$out/$target.log" 2>&1; then
    grep -E "ERROR|SUMMARY|runtime error" "$out/$target.log" | head -5
    echo "$target: failure; reproducer in $out/$target-crash-*"
    exit 1
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added" "$out/$target.log"
done
