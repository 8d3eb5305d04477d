#!/usr/bin/env bash
# Runs the project's own processes in the background for `make demo`, one pid file and one log each
# under .data/ (the dev stack's PostgreSQL and mosquitto are stack.sh's).
#
#   deploy/dev/service.sh start NAME READY_PATTERN COMMAND [ARGS...]
#       (re)starts COMMAND as NAME and waits until its log shows READY_PATTERN (a grep -E pattern)
#   deploy/dev/service.sh stop NAME|all
#   deploy/dev/service.sh status
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
data=${BL_DATA:-$root/.data}
run=$data/run
logs=$data/logs
mkdir -p "$run" "$logs"

running() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

stop() {
  local name=$1
  if running "$name"; then
    local pid; pid=$(cat "$run/$name.pid")
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "service: stopped $name"
  fi
  rm -f "$run/$name.pid"
}

case "${1:-}" in
  start)
    [ $# -ge 4 ] || { echo "usage: $0 start NAME READY_PATTERN COMMAND [ARGS...]" >&2; exit 2; }
    name=$2; ready=$3; shift 3
    stop "$name"
    log=$logs/$name.log
    # The log is kept across restarts (a first start may print what later ones do not, such as
    # a generated password); readiness is looked for in this start's lines only.
    echo "--- service.sh: starting $name at $(date -u +%FT%TZ)" >>"$log"
    from=$(wc -l <"$log")
    nohup "$@" >>"$log" 2>&1 &
    echo $! >"$run/$name.pid"
    for _ in $(seq 300); do
      if tail -n +"$from" "$log" | grep -qE "$ready"; then echo "service: $name started (log: $log)"; exit 0; fi
      if ! running "$name"; then break; fi
      sleep 0.1
    done
    echo "service: $name did not become ready; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    stop "$name" >/dev/null
    exit 1
    ;;
  stop)
    [ $# -eq 2 ] || { echo "usage: $0 stop NAME|all" >&2; exit 2; }
    if [ "$2" = all ]; then
      # (with no pid file the glob stays literal: skip it, and do not end with its failed test)
      for f in "$run"/*.pid; do
        [ -e "$f" ] || continue
        stop "$(basename "$f" .pid)"
      done
    else
      stop "$2"
    fi
    ;;
  status)
    for f in "$run"/*.pid; do
      [ -e "$f" ] || continue
      name=$(basename "$f" .pid)
      if running "$name"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: dead"; fi
    done
    ;;
  *)
    echo "usage: $0 start|stop|status ..." >&2
    exit 2
    ;;
esac
