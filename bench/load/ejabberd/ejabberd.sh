#!/usr/bin/env bash
# Starts and stops a throwaway ejabberd node for chatcore-bench.
#
#   ejabberd.sh start <work-dir> <c2s-port> <cpu> <accounts> [password]
#       fresh work dir: SQLite database from the package's lite.sql with
#       <accounts> users u0..u<n-1> inserted before the start, config from
#       ejabberd.yml.in (loopback only); ejabberd pinned to <cpu> with
#       taskset; waits until the c2s port accepts; prints the PID of the
#       Erlang VM (beam.smp) and writes it to <work-dir>/server.pid. With
#       TSUNG_ACCOUNTS=N, also Tsung's accounts t1..tN (password p1..pN).
#   ejabberd.sh stop <work-dir>
#       SIGTERM to that PID (Erlang stops cleanly), SIGKILL after 20 s.
#
# Known traps handled here: the open-file soft limit is raised before the
# start (19,000 connections); the SQLite schema is the package's lite.sql;
# accounts exist before the server starts; Debian's ejabberdctl drops
# root for the ejabberd user, so the work dir is handed to that user.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?start|stop}
work=${2:?work dir}

case "$cmd" in
start)
  port=${3:?c2s port}
  cpu=${4:?cpu}
  accounts=${5:?accounts}
  password=${6:-bench-password}
  lite_sql=/usr/share/ejabberd/sql/lite.sql
  [[ -f $lite_sql ]] || lite_sql=$(ls /usr/lib/x86_64-linux-gnu/ejabberd-*/priv/sql/lite.sql | head -1)
  rm -rf "$work"
  mkdir -p "$work/etc" "$work/spool" "$work/log"
  node="ejabberd_bench_${port}@localhost"
  # Erlang distribution (ejabberdctl's channel) on another free loopback port.
  dist_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sed -e "s#@C2S_PORT@#$port#g" -e "s#@WORK@#$work#g" "$here/ejabberd.yml.in" > "$work/etc/ejabberd.yml"
  sed -e "s#@NODE@#$node#g" -e "s#@DIST_PORT@#$dist_port#g" -e "s#@WORK@#$work#g" \
    "$here/ejabberdctl.cfg.in" > "$work/etc/ejabberdctl.cfg"
  cp /etc/ejabberd/inetrc "$work/etc/inetrc"
  sqlite3 "$work/ejabberd.db" < "$lite_sql"
  {
    echo "BEGIN;"
    seq 0 $((accounts - 1)) |
      awk -v pw="$password" '{ printf "INSERT INTO users(username, password) VALUES (%cu%d%c, %c%s%c);\n", 39, $1, 39, 39, pw, 39 }'
    # Tsung's accounts (bench/load/tsung): t1..tN with password p1..pN.
    if [[ ${TSUNG_ACCOUNTS:-0} -gt 0 ]]; then
      seq 1 "$TSUNG_ACCOUNTS" |
        awk '{ printf "INSERT INTO users(username, password) VALUES (%ct%d%c, %cp%d%c);\n", 39, $1, 39, 39, $1, 39 }'
    fi
    echo "COMMIT;"
  } | sqlite3 "$work/ejabberd.db"
  chown -R ejabberd: "$work"
  # Raise the open-file soft limit first, then become the ejabberd user with
  # setpriv, which keeps resource limits: ejabberdctl's own "su ejabberd"
  # goes through PAM and resets the soft limit to 1024.
  ulimit -n "$(ulimit -Hn)"
  (cd "$work" && HOME=/var/lib/ejabberd exec taskset -c "$cpu" \
    setpriv --reuid ejabberd --regid ejabberd --init-groups \
    /usr/sbin/ejabberdctl --config-dir "$work/etc" --spool "$work/spool" \
    --logs "$work/log" foreground) > "$work/console.log" 2>&1 &
  launcher=$!
  echo "$launcher" > "$work/launcher.pid"
  beam=
  for _ in $(seq 240); do
    if [[ -z "$beam" ]]; then
      # The VM is a descendant of the launcher (su -> sh -> erl -> beam.smp);
      # it is found by its unique node name, never by a broad pattern.
      beam=$(pgrep -f -- "beam.smp.*-sname ${node}( |$)" | head -1 || true)
    fi
    if [[ -n "$beam" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$beam" > "$work/server.pid"
      echo "$beam"
      exit 0
    fi
    kill -0 "$launcher" 2>/dev/null || { cat "$work/console.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "ejabberd did not come up in 120 s" >&2
  cat "$work/console.log" >&2
  exit 1
  ;;
stop)
  pid=$(cat "$work/server.pid" 2>/dev/null || true)
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  launcher=$(cat "$work/launcher.pid" 2>/dev/null || true)
  [[ -n "$launcher" ]] && wait "$launcher" 2>/dev/null || true
  ;;
*)
  echo "usage: $0 start <work> <port> <cpu> <accounts> [password] | stop <work>" >&2
  exit 2
  ;;
esac
