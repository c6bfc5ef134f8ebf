#!/usr/bin/env bash
# Runs every test: installs what is missing, builds with warnings as
# errors, runs the whole ctest suite (unit, store conformance, engine,
# examples, fuzz corpus, benchmark smoke, the real daemon over real
# WebSockets, the CLI against the daemon, the web client in Chromium), then
# builds the engine, stores and daemon again with AddressSanitizer +
# UndefinedBehaviorSanitizer and runs their tests again (the web client, CLI
# and benchmarks add no C++ of the server's to that pass).
#   SKIP_SANITIZERS=1 scripts/test.sh   # the first pass only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-$(nproc)}
"$root/scripts/install-deps.sh"

run_suite() {
  local build=$1
  shift
  echo "==> configure + build: $build $*"
  BUILD_DIR=$build "$root/scripts/build.sh" "$@"
  echo "==> ctest: $build"
  # Sanitizer reports abort the process, so any finding fails its test.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 900
}

run_suite "$root/build"
if [[ -z "${SKIP_SANITIZERS:-}" ]]; then
  run_suite "$root/build-asan" -DCHATCORE_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug \
    -DCHATCORE_BUILD_BENCH=OFF -DCHATCORE_BUILD_WEB=OFF -DCHATCORE_BUILD_CLI=OFF
fi
echo "==> all tests passed"
