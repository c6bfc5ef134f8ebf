#!/usr/bin/env bash
# Tsung cross-check of the XMPP adapter's knee on ejabberd: the same kind of
# stepped offered rate, measured by Tsung 1.7 (Debian) instead of
# chatcore-bench. One Tsung run per rate step against a running ejabberd
# whose accounts t1..tN (password p1..pN) exist (ejabberd.sh start with
# TSUNG_ACCOUNTS=N).
#
#   run-tsung.sh <port> <users> <seconds-per-step> <cpu> <out-dir> <rate>...
#
# Writes <out-dir>/tsung-<rate>/ (Tsung's logs) and prints one line per step,
# stopping after the first failed one:
#   rate expected received mean_ms mean_minus_half_think_ms max_ms pass|FAIL
# A step counts as sustained (the knee is the highest such rate before the
# first failure) when >= 99 % of the sent messages were received and the
# mean stamped latency, less half a think time (see below), is <= 50 ms:
# Tsung reports means and maxima per 10 s, not percentiles, so this is the
# closest match to chatcore-bench's rule. Few users (e.g. 10) keep the
# think time, and so Tsung's own delay, short.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=$1 users=$2 secs=$3 cpu=$4 out=$5
shift 5
mkdir -p "$out"
for rate in "$@"; do
  think=$(awk -v u="$users" -v r="$rate" 'BEGIN { printf "%.4f", u / r }')
  loops=$(awk -v s="$secs" -v t="$think" 'BEGIN { printf "%d", s / t }')
  arrival_rate=$(( users < 200 ? users : 200 ))
  # Arrivals are Poisson: leave time enough for all of them, or wait_global
  # (everyone online before the first message) would never be reached.
  arrival=$(( 2 * users / arrival_rate + 5 ))
  dir="$out/tsung-$rate"
  rm -rf "$dir"; mkdir -p "$dir"
  sed -e "s#@PORT@#$port#g" -e "s#@USERS@#$users#g" -e "s#@THINK@#$think#g" \
      -e "s#@LOOPS@#$loops#g" -e "s#@ARRIVAL@#$arrival#g" -e "s#@ARRIVAL_RATE@#$arrival_rate#g" \
      "$here/tsung.xml.in" > "$dir/tsung.xml"
  # Bounded: a step never runs longer than its schedule plus two minutes.
  timeout $((secs + 120)) taskset -c "$cpu" tsung -f "$dir/tsung.xml" -l "$dir" start \
    > "$dir/console.log" 2>&1 || true
  log=$(find "$dir" -name tsung.log | head -1)
  line=$(/usr/bin/python3 - "$rate" "${log:-/nonexistent}" "$((users * loops))" "$think" <<'PY'
import sys
rate, path, expected, think = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
n = total = mx = 0.0
try:
    # "stats: xmpp_msg_latency <count> <mean> <stddev> <max> <min> ..." per 10 s window
    for line in open(path):
        p = line.split()
        if len(p) >= 6 and p[0] == "stats:" and p[1] == "xmpp_msg_latency":
            c, mean = float(p[2]), float(p[3])
            n += c
            total += c * mean
            mx = max(mx, float(p[5]))
except OSError:
    pass
# Tsung reads a session's socket only when its think time ends, so every
# stamped latency carries on average half a think time of Tsung's own
# delay: report the mean with that removed (and keep think times short by
# using few senders).
mean = total / n if n else float("nan")
corrected = mean - think * 1000 / 2
ok = n >= 0.99 * expected and corrected <= 50
print(f"{rate} {expected} {int(n)} {mean:.2f} {corrected:.2f} {mx:.2f} {'pass' if ok else 'FAIL'}")
PY
)
  echo "$line"
  [[ $line == *pass ]] || break
done
