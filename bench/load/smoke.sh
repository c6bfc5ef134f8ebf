#!/usr/bin/env bash
# CI smoke run of one chatcore-bench scenario against a real chatcored:
# a free loopback port, a temporary data dir, a second or two of tiny load.
# Passes when the run completes with no error and every acked message
# delivered (chatcore-bench --check). Nothing about timing is asserted.
#   smoke.sh <chatcored> <chatcore-bench> <one2one|group|idle>
set -euo pipefail
chatcored=$1
bench=$2
scenario=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/chatcore-bench-smoke.XXXXXX")
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free port: bind port 0, read what the kernel chose, release it.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/chatcored.toml" <<CONF
[storage]
durability = "sync"
[limits]
sends_per_second = 100000.0
send_burst = 100000.0
[log]
level = "warn"
CONF
"$chatcored" --config "$work/chatcored.toml" --listen "127.0.0.1:$port" \
  --data-dir "$work/data" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  if /usr/bin/python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=1)
PY
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done

common=(--target chatcore --port "$port" --check --max-seconds 120 --json "$work/result.json")
case "$scenario" in
  one2one) "$bench" "${common[@]}" --scenario one2one --users 4 --rates 20,50 --no-stop \
             --step-seconds 1 --drain-seconds 5 --http-writes-per-second 10 ;;
  group)   "$bench" "${common[@]}" --scenario group --groups 1 --group-size 5 --rates 10 \
             --step-seconds 1 --drain-seconds 5 ;;
  idle)    "$bench" "${common[@]}" --scenario idle --idle-users 2 --idle-counts 5,10 \
             --settle-seconds 1 --server-pid "$server_pid" ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
echo "smoke $scenario: ok"
