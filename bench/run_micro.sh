#!/usr/bin/env bash
# Builds the micro benchmarks in Release, runs every one of them 5 times and
# regenerates the "Engine and store microbenchmarks" section of
# docs/benchmarks.md from the JSON (bench/render_micro.py), with the exact
# command, the machine and the filesystem the LMDB files were on.
#
# Usage: bench/run_micro.sh [extra Google Benchmark flags...]
#   e.g. bench/run_micro.sh --benchmark_filter=LmdbCommit   (a partial run:
#        the doc then shows only what ran)
# Environment:
#   BUILD_DIR           build tree (default: build-bench in the repository)
#   CHATCORE_BENCH_DIR  where the LMDB environments go (default: $TMPDIR or
#                       /tmp). Must be disk-backed: fsync on tmpfs is free.
#   JOBS                parallel build jobs (default: 2)
#   DOC                 the page to update (default: docs/benchmarks.md)
#
# Takes about 3-5 minutes on 2 cores; most of it is the kSync runs, bound by
# the disk's flush latency. Nothing here asserts a timing. Run it on an
# otherwise idle machine: the doc records the load and CPU/IO pressure seen
# before and after (and the niceness, if not 0) so a noisy run shows.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
jobs=${JOBS:-2}
doc=${DOC:-$root/docs/benchmarks.md}
export CHATCORE_BENCH_DIR=${CHATCORE_BENCH_DIR:-${TMPDIR:-/tmp}}

fs_type=$(df --output=fstype "$CHATCORE_BENCH_DIR" | tail -n1 | tr -d ' ')
if [[ "$fs_type" == tmpfs || "$fs_type" == ramfs ]]; then
  echo "run_micro: $CHATCORE_BENCH_DIR is $fs_type: kSync figures would be meaningless;" >&2
  echo "           set CHATCORE_BENCH_DIR to a directory on a disk." >&2
  exit 1
fi

# Only the library and the benchmark: the daemon, tests and examples are
# not needed to measure the engine.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCHATCORE_BUILD_BENCH=ON \
  -DCHATCORE_BUILD_TESTS=OFF -DCHATCORE_BUILD_EXAMPLES=OFF -DCHATCORE_BUILD_DAEMON=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target chatcore_micro_bench

json=$build/micro_bench.json
machine=$build/micro_machine.json
log=$build/micro_bench.log
python3 "$root/bench/render_micro.py" machine --bench-dir "$CHATCORE_BENCH_DIR" --repo "$root" \
  --out "$machine"

bench=("$build/bench/chatcore_micro_bench" --benchmark_repetitions=5
  --benchmark_report_aggregates_only=true --benchmark_format=json
  "--benchmark_out=$json" --benchmark_out_format=json "$@")
echo "run_micro: running ${bench[*]}"
echo "run_micro: (LMDB files under $CHATCORE_BENCH_DIR, $fs_type; console output in $log)"
"${bench[@]}" >"$log"

# The command as a reader re-runs it, relative to the repository.
shown_bench="${bench[*]}"
shown_bench=${shown_bench//$root\//}
command="bench/run_micro.sh${*:+ $*}"
niceness=$(nice)
if [[ "$niceness" != 0 ]]; then command="nice -n $niceness $command"; fi
python3 "$root/bench/render_micro.py" render --json "$json" --machine "$machine" \
  --command "$command" --bench-command "CHATCORE_BENCH_DIR=$CHATCORE_BENCH_DIR $shown_bench" \
  --doc "$doc" --notes "$root/bench/micro_notes.md"
echo "run_micro: JSON in $json"
