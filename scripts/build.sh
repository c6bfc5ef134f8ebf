#!/usr/bin/env bash
# Configures and builds chatcore into BUILD_DIR (default ./build).
# Usage: scripts/build.sh [extra cmake args...]
#   BUILD_DIR=build-asan scripts/build.sh -DCHATCORE_SANITIZE=address,undefined
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
jobs=${JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -DCHATCORE_WERROR=ON "$@"
cmake --build "$build" -j"$jobs"
