#!/usr/bin/env bash
# The full end-to-end comparison: chatcored vs ejabberd 23.01 (Debian 12),
# measured by chatcore-bench, then docs/benchmarks.md's section
# "End-to-end load: chatcore vs ejabberd" and its plot are regenerated.
# Not part of CI (CI runs bench/load/smoke.sh against chatcored only).
#
#   scripts/bench-compare.sh [--rounds N] [--quick] [--out DIR] [--no-build] [--no-doc]
#                            [--no-tsung] [--rounds-only] [--tsung-only]
#
# Fairness (docs/benchmarks.md says the same):
#  * the server under test runs pinned to CPU 0 (taskset), chatcore-bench to
#    CPU 1; one server at a time, in alternating order A B A B ... (rounds);
#  * a fresh data dir for every server start; medians over the rounds and
#    ratios of medians are reported;
#  * same schedule, same 100-byte bodies, same durability class (chatcored
#    "sync": fsync per commit batch; ejabberd: SQLite synchronous=FULL),
#    plus chatcored "nosync" as a non-durable reference line.
# Every server is started on 127.0.0.1 by this script, its PID recorded and
# stopped by PID; every run is bounded (chatcore-bench --max-seconds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
orig_args="$*"
# The environment overrides this script reads, recorded with the command in
# meta.json: a rerun from docs/benchmarks.md must use the same schedules.
env_args=""
for v in BENCH_GROUPS CC_GROUP_RATES CC_RATES DRAIN_SECONDS EJ_GROUP_RATES EJ_RATES GROUP_SIZE \
  HTTP_WRITES IDLE_COUNTS PAIRS_USERS STEP_SECONDS STOP_AFTER STRACE_RATE STRACE_RATE_EJ \
  TSUNG_RATES TSUNG_USERS; do
  if [[ -n ${!v:-} ]]; then env_args+="$v=${!v} "; fi
done
rounds=2
quick=0
build=1
doc=1
tsung=1
rounds_only=0
tsung_only=0
out=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --out) out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-doc) doc=0; shift ;;
    --no-tsung) tsung=0; shift ;;
    --rounds-only) rounds_only=1; tsung=0; shift ;;
    --tsung-only) tsung_only=1; shift ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

build_dir=${BUILD_DIR:-$root/build-load}
out=${out:-$build_dir/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$out/run.log" >&2; }

# ---- packages (the comparison's extras; CI never needs them) -------------------------
extras=(ejabberd erlang-p1-sqlite3 sqlite3 gnuplot-nox strace tsung linux-perf)
missing=()
for p in "${extras[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench-compare: needs: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  # policy-rc.d keeps the package's own ejabberd service from starting: this
  # script starts its own node on loopback and nothing else may listen.
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  if [[ -f /run/ejabberd/ejabberd.pid ]] || pgrep -u ejabberd -f "beam.smp.*-sname ejabberd@" >/dev/null; then
    echo "bench-compare: the ejabberd system service is running; stop it first" >&2
    exit 1
  fi
fi

# ---- binaries ---------------------------------------------------------------------
if [[ -z "${CHATCORED:-}" || -z "${CHATCORE_BENCH:-}" ]]; then
  if [[ $build -eq 1 ]]; then
    log "building chatcored and chatcore-bench (Release) in $build_dir"
    cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release > "$out/cmake.log"
    cmake --build "$build_dir" -j2 --target chatcored chatcore-bench >> "$out/cmake.log"
  fi
  CHATCORED=${CHATCORED:-$build_dir/daemon/chatcored}
  CHATCORE_BENCH=${CHATCORE_BENCH:-$build_dir/bench/load/chatcore-bench}
fi
[[ -x $CHATCORED && -x $CHATCORE_BENCH ]] || { echo "missing binaries" >&2; exit 1; }

server_cpu=${SERVER_CPU:-0}
gen_cpu=${GEN_CPU:-1}
# 19,000 connections on each side: raise the open-file soft limit to the
# hard limit (20,000 on the benchmark machine) for everything started here.
ulimit -n "$(ulimit -Hn)"

# ---- schedules ----------------------------------------------------------------------
if [[ $quick -eq 1 ]]; then
  step=2; drain=3
  cc_rates=2000,8000,20000,40000
  ej_rates=50,200,800
  cc_group_rates=100,400,1000
  ej_group_rates=5,20,80
  idle_counts=200,1000
  cc_idle_users=20
  pairs_users=${PAIRS_USERS:-20}
  group_size=${GROUP_SIZE:-10}
else
  step=${STEP_SECONDS:-5}; drain=${DRAIN_SECONDS:-5}
  cc_rates=${CC_RATES:-500,1000,2000,5000,10000,15000,20000,25000,30000,35000,40000,50000,60000,70000,80000}
  ej_rates=${EJ_RATES:-5,10,15,20,25,30,40,50,60,80,100,150,200,300,400,600,800,1000,1200,1500}
  cc_group_rates=${CC_GROUP_RATES:-25,50,100,200,400,600,800,1000,1500,2000,3000,4000,5000,6000,8000}
  ej_group_rates=${EJ_GROUP_RATES:-1,2,3,5,8,10,15,20,30,40,60,80,100,150,200,300,400}
  idle_counts=${IDLE_COUNTS:-1000,5000,10000,19000}
  cc_idle_users=100
fi
pairs_users=${pairs_users:-${PAIRS_USERS:-200}}
groups=${BENCH_GROUPS:-2}
group_size=${group_size:-${GROUP_SIZE:-100}}
max_idle=${idle_counts##*,}

# --stop-after 3: a step spoiled by a noisy neighbour does not end the curve;
# the strict "max sustained" (highest pass before the first failure) is
# still what the report calls the maximum.
common=(--step-seconds "$step" --drain-seconds "$drain" --max-seconds 1500 --source-ips 32
        --stop-after "${STOP_AFTER:-3}")

# ---- server control -----------------------------------------------------------------
# A port nobody listens on: bind port 0, read what the kernel chose, release.
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
server_pid=
server_kind=
server_dir=
server_port=
# The start functions set these globals (never call them in $(...): the
# server would then be a child of a subshell and its PID lost).

start_chatcored() {  # mode
  local mode=$1
  server_dir=$(mktemp -d "$out/chatcored.XXXX")
  local port
  port=$(free_port)
  server_port=$port
  cat > "$server_dir/chatcored.toml" <<CONF
[storage]
durability = "$mode"
[limits]
# The benchmark users send far above an interactive user's rate.
sends_per_second = 1000000.0
send_burst = 1000000.0
[log]
level = "warn"
CONF
  taskset -c "$server_cpu" "$CHATCORED" --config "$server_dir/chatcored.toml" \
    --listen "127.0.0.1:$port" --data-dir "$server_dir/data" > "$server_dir/server.log" 2>&1 &
  server_pid=$!
  server_kind=chatcore
  for _ in $(seq 100); do
    # Ready, and it is our process answering (not another server that
    # took the port in between).
    if curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && kill -0 "$server_pid"; then
      return 0
    fi
    sleep 0.1
  done
  echo "chatcored did not start" >&2
  cat "$server_dir/server.log" >&2
  return 1
}

start_ejabberd() {
  server_dir=$(mktemp -d "$out/ejabberd.XXXX")
  local port
  port=$(free_port)
  server_port=$port
  # Accounts u0..u(n-1) for the largest scenario, inserted before the start.
  local accounts=$(( max_idle > pairs_users ? max_idle : pairs_users ))
  server_pid=$("$root/bench/load/ejabberd/ejabberd.sh" start "$server_dir" "$port" "$server_cpu" "$accounts")
  server_kind=ejabberd
}

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  if [[ $server_kind == ejabberd ]]; then
    "$root/bench/load/ejabberd/ejabberd.sh" stop "$server_dir"
  else
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  # Data dirs are large (LMDB maps, SQLite); keep only the logs.
  rm -rf "$server_dir/data" "$server_dir/spool" "$server_dir/ejabberd.db"
  server_pid=
}
trap stop_server EXIT

bench() {  # json-name, then chatcore-bench args
  local name=$1; shift
  log "run $name (load $(cut -d' ' -f1-3 /proc/loadavg))"
  taskset -c "$gen_cpu" "$CHATCORE_BENCH" "$@" --label "$name" --json "$out/$name.json" \
    2> >(tee "$out/$name.log" >&2) || log "run $name failed (status $?)"
}

run_chatcore() {  # round mode
  local r=$1 mode=$2 port
  start_chatcored "$mode"; port=$server_port
  bench "r$r-chatcore-$mode-one2one" --target chatcore --port "$port" --scenario one2one \
    --users "$pairs_users" --rates "$cc_rates" --server-pid "$server_pid" "${common[@]}"
  stop_server
  start_chatcored "$mode"; port=$server_port
  bench "r$r-chatcore-$mode-group" --target chatcore --port "$port" --scenario group \
    --groups "$groups" --group-size "$group_size" --rates "$cc_group_rates" \
    --server-pid "$server_pid" "${common[@]}"
  stop_server
  if [[ $mode == sync ]]; then
    start_chatcored "$mode"; port=$server_port
    bench "r$r-chatcore-$mode-idle" --target chatcore --port "$port" --scenario idle \
      --idle-users "$cc_idle_users" --idle-counts "$idle_counts" --server-pid "$server_pid" \
      "${common[@]}"
    stop_server
  fi
}

run_ejabberd() {  # round
  local r=$1 port
  start_ejabberd; port=$server_port
  bench "r$r-ejabberd-sync-one2one" --target xmpp --port "$port" --scenario one2one \
    --users "$pairs_users" --rates "$ej_rates" --server-pid "$server_pid" "${common[@]}"
  stop_server
  start_ejabberd; port=$server_port
  bench "r$r-ejabberd-sync-group" --target xmpp --port "$port" --scenario group \
    --groups "$groups" --group-size "$group_size" --rates "$ej_group_rates" \
    --server-pid "$server_pid" "${common[@]}"
  stop_server
  start_ejabberd; port=$server_port
  # One account per connection: XMPP broadcasts presence between a user's
  # own resources, which would make 190 devices per account quadratic.
  bench "r$r-ejabberd-sync-idle" --target xmpp --port "$port" --scenario idle \
    --idle-users "$max_idle" --idle-counts "$idle_counts" --server-pid "$server_pid" \
    "${common[@]}"
  stop_server
}

# Write syscalls per delivered frame: strace -f attached to the server for
# the measured part of a fixed 1:1 run only (set-up excluded).
run_strace() {  # kind rate
  local kind=$1 rate=$2 port target
  if [[ $kind == chatcore ]]; then start_chatcored sync; target=chatcore
  else start_ejabberd; target=xmpp; fi
  port=$server_port
  local ready="$out/strace-$kind.ready"
  rm -f "$ready"
  taskset -c "$gen_cpu" "$CHATCORE_BENCH" --target "$target" --port "$port" --scenario one2one \
    --users "$pairs_users" --rates "$rate" --step-seconds 5 --drain-seconds 10 --no-stop \
    --ready-file "$ready" --start-delay 2 --max-seconds 600 --label "strace-$kind" \
    --json "$out/strace-$kind.json" 2> "$out/strace-$kind.log" &
  local bench_pid=$!
  for _ in $(seq 1200); do [[ -f $ready ]] && break; sleep 0.1; done
  # Every write-like call with its descriptor decoded (-yy), so socket writes
  # and file writes (LMDB, SQLite) are counted apart.
  strace -f -qq -yy -s 0 -e trace=write,writev,sendto,sendmsg,pwrite64 -p "$server_pid" \
    -o "$out/strace-$kind.txt" &
  local strace_pid=$!
  wait "$bench_pid" || true
  kill -INT "$strace_pid" 2>/dev/null || true
  wait "$strace_pid" 2>/dev/null || true
  stop_server
}

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
log "output: $out; server CPU $server_cpu, generator CPU $gen_cpu; rounds $rounds"
{
  echo "{\"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\","
  echo " \"cpus\": $(nproc), \"kernel\": \"$(uname -r)\", \"rounds\": $rounds,"
  echo " \"command\": \"${env_args}scripts/bench-compare.sh $orig_args\", \"started\": \"$(date -u +%FT%TZ)\","
  echo " \"step_seconds\": $step, \"pairs_users\": $pairs_users,"
  echo " \"commit\": \"$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)\","
  echo " \"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo " \"fsync_start\": $(/usr/bin/python3 "$root/bench/load/fsync_probe.py" "$out"),"
  echo " \"ejabberd\": \"$(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null)\","
  echo " \"chatcored\": \"$("$CHATCORED" --version 2>/dev/null | head -1)\"}"
} > "$out/meta.json"

[[ $tsung_only -eq 1 ]] && { rounds=0; rounds_only=1; }
for r in $(seq "$rounds"); do
  # A B A B: chatcore first in odd rounds, ejabberd first in even ones.
  if (( r % 2 == 1 )); then
    run_chatcore "$r" sync; run_ejabberd "$r"
  else
    run_ejabberd "$r"; run_chatcore "$r" sync
  fi
  run_chatcore "$r" nosync
done
if [[ $rounds_only -eq 0 ]]; then
# Latency at 50 % of chatcore's maximum: the median max of the stepped runs,
# halved, held for 10 s, once per round on a fresh server.
half=$(/usr/bin/python3 - "$out" <<'PY'
import glob, json, statistics, sys
m = [json.load(open(p))["summary"].get("max_sustained_rate", 0)
     for p in glob.glob(sys.argv[1] + "/r*-chatcore-sync-one2one.json")]
print(int(statistics.median(m) / 2) if m and statistics.median(m) > 0 else 0)
PY
)
if [[ $half -gt 0 ]]; then
  # Each round twice: alone, then with writes other than messages beside
  # it (one account editing its profile over HTTP ${HTTP_WRITES:-5} times a
  # second: LMDB writes, which a checkpoint's transaction holds up).
  for r in $(seq "$rounds"); do
    for variant in half halfwrites; do
      side=()
      [[ $variant == halfwrites ]] && side=(--http-writes-per-second "${HTTP_WRITES:-5}")
      start_chatcored sync
      bench "r$r-chatcore-sync-$variant" --target chatcore --port "$server_port" \
        --scenario one2one --users "$pairs_users" --rates "$half" --step-seconds 10 \
        --drain-seconds "$drain" --no-stop --server-pid "$server_pid" --max-seconds 600 \
        --source-ips 32 "${side[@]}"
      stop_server
    done
  done
fi
# Where chatcored's time goes near its maximum: perf record -g on the
# server for the measured part of a fixed 1:1 run at the median maximum.
run_profile() {  # mode rate
  local mode=$1 rate=$2
  [[ $rate -gt 0 ]] && command -v perf > /dev/null || return 0
  start_chatcored "$mode"
  local ready="$out/perf-$mode.ready"
  taskset -c "$gen_cpu" "$CHATCORE_BENCH" --target chatcore --port "$server_port" \
    --scenario one2one --users "$pairs_users" --rates "$rate" --step-seconds 8 \
    --drain-seconds "$drain" --no-stop --ready-file "$ready" --start-delay 1 \
    --server-pid "$server_pid" --max-seconds 600 --label "perf-$mode" \
    --json "$out/perf-$mode.json" 2> "$out/perf-$mode.log" &
  local bench_pid=$!
  for _ in $(seq 1200); do [[ -f $ready ]] && break; sleep 0.1; done
  perf record -g -o "$out/perf-$mode.data" -p "$server_pid" -- sleep 8 \
    > /dev/null 2>&1 || true
  wait "$bench_pid" || true
  stop_server
  perf report -i "$out/perf-$mode.data" --stdio --no-children --percent-limit 1 \
    --sort dso,symbol -g none > "$out/perf-$mode.txt" 2> /dev/null || true
  # The same samples charged to the system call they happened under.
  perf report -i "$out/perf-$mode.data" --stdio --children --sort symbol -g none \
    > "$out/perf-$mode-syscalls.txt" 2> /dev/null || true
}
max_sync=$(( half * 2 ))
run_profile sync "$max_sync"
run_profile nosync "$(/usr/bin/python3 - "$out" <<'PY'
import glob, json, statistics, sys
m = [json.load(open(p))["summary"].get("max_sustained_rate", 0)
     for p in glob.glob(sys.argv[1] + "/r*-chatcore-nosync-one2one.json")]
print(int(statistics.median(m)) if m else 0)
PY
)"

run_strace chatcore "${STRACE_RATE:-2000}"
run_strace ejabberd "${STRACE_RATE_EJ:-20}"
fi  # rounds_only

# Cross-check of the XMPP adapter against Tsung on ejabberd: the same
# stepped 1:1 rates, measured by Tsung (bench/load/tsung/run-tsung.sh);
# report.py compares the knees.
if [[ $tsung -eq 1 ]]; then
  log "run tsung cross-check (load $(cut -d' ' -f1-3 /proc/loadavg))"
  # Finer steps than the comparison's around ejabberd's knee (a few hundred
  # messages/s here): at 33-50 % apart, one step of disagreement would
  # already exceed the ±15 % the cross-check allows.
  if [[ $quick -eq 1 ]]; then tsung_rates_csv=$ej_rates
  else tsung_rates_csv=${TSUNG_RATES:-20,50,100,150,200,230,260,300,340,390,450,520,600,700,800,900,1000,1150,1300,1500,1750,2000}; fi
  IFS=, read -r -a tsung_rates <<< "$tsung_rates_csv"
  # Few senders: short think times (users / rate) between a session's sends.
  tsung_users=${TSUNG_USERS:-10}
  : > "$out/tsung.txt"
  for rate in "${tsung_rates[@]}"; do
    # Per step, Tsung then chatcore-bench's XMPP adapter, each against a
    # fresh ejabberd, back to back: the disk's flush latency (which bounds
    # ejabberd) drifts over minutes, so the two tools must see the same
    # moment. A fresh server per step also keeps messages stored offline at
    # the end of one step from being replayed into the next.
    server_dir=$(mktemp -d "$out/ejabberd.XXXX")
    server_port=$(free_port)
    server_pid=$(TSUNG_ACCOUNTS=$tsung_users "$root/bench/load/ejabberd/ejabberd.sh" start \
      "$server_dir" "$server_port" "$server_cpu" 1)
    server_kind=ejabberd
    line=$("$root/bench/load/tsung/run-tsung.sh" "$server_port" "$tsung_users" "$step" \
      "$gen_cpu" "$out/tsung" "$rate" | tail -1)
    stop_server
    log "tsung: $line"
    echo "$line" >> "$out/tsung.txt"
    start_ejabberd
    # Like Tsung's client: no XEP-0198 stream management, so no <r/> per
    # message for ejabberd to answer (delivery is what the two compare).
    bench "xcheck-$rate" --target xmpp --port "$server_port" --scenario one2one \
      --users "$tsung_users" --rates "$rate" --server-pid "$server_pid" \
      --xmpp-no-stream-management "${common[@]}"
    stop_server
    # Stop once Tsung no longer holds the step by report.py's rule (>= 99 %
    # delivered, mean <= 250 ms), not by run-tsung.sh's stricter pass line,
    # so that the sequence reaches a step where both tools saturate.
    awk '{ exit !($2 > 0 && $3 / $2 >= 0.99 && $4 <= 250) }' <<< "$line" || break
  done
fi

/usr/bin/python3 - "$out" "$root" <<'PY'
import json, subprocess, sys
p = sys.argv[1] + "/meta.json"
m = json.load(open(p))
m["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
m["fsync_end"] = json.loads(subprocess.run(
    ["/usr/bin/python3", sys.argv[2] + "/bench/load/fsync_probe.py", sys.argv[1]],
    capture_output=True, text=True, check=True).stdout)
json.dump(m, open(p, "w"), indent=1)
PY
log "results in $out"
if [[ $doc -eq 1 ]]; then
  /usr/bin/python3 "$root/bench/load/report.py" "$out" "$root/docs/benchmarks.md"
  log "docs/benchmarks.md and docs/benchmarks-load.png regenerated"
fi
