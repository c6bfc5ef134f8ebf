#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs chatcored on its
# embedded LMDB default: http://127.0.0.1:8080/ (WebSocket at /ws).
# Extra arguments go to chatcored, e.g.: scripts/run.sh --listen 127.0.0.1:9000
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" -DCHATCORE_BUILD_TESTS=OFF -DCHATCORE_BUILD_BENCH=OFF
cd "$root"
exec "${BUILD_DIR:-$root/build}/daemon/chatcored" --listen 127.0.0.1:8080 --data-dir ./chatcore-data "$@"
