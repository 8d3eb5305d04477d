#!/usr/bin/env bash
# The private dev stack: PostgreSQL and mosquitto under .data/, loopback only, each with its own
# generated credentials. Nothing here touches the system-wide services.
#
#   deploy/dev/stack.sh start    start (initialising on first use); idempotent
#   deploy/dev/stack.sh stop     stop both
#   deploy/dev/stack.sh status   say what runs where
#   deploy/dev/stack.sh mqtt-user NAME PASSWORD   add a broker account and reload
#   deploy/dev/stack.sh mqtt-user-remove NAME     remove a broker account (a test's box) and reload
#   deploy/dev/stack.sh start-mqtt|stop-mqtt      the broker alone (tests run private ones)
#   deploy/dev/stack.sh start-pg|stop-pg [immediate]   the database alone (likewise)
#
# Connection details land in .data/stack.env (sourced by make, read by tests).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
data=${BL_DATA:-$root/.data}
# Ports: the environment's, else those of the running stack, else the defaults.
saved_port() { [ -f "$data/stack.env" ] && sed -n "s/^$1=.*:\([0-9]*\)\/.*/\1/p; s/^$1=\([0-9]*\)$/\1/p" "$data/stack.env"; }
pg_port=${BL_PG_PORT:-$(saved_port BL_PG_URL || true)}
pg_port=${pg_port:-55432}
mqtt_port=${BL_MQTT_PORT:-$(saved_port BL_MQTT_PORT || true)}
mqtt_port=${mqtt_port:-18883}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

# PostgreSQL refuses to run as root and mosquitto drops root by itself, so as root each runs as the
# user its Debian package created, and owns its own folder.
as_user() { # user command...
  local user=$1; shift
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u "$user" -- "$@"); else "$@"; fi
}
own() { # user dir
  if [ "$(id -u)" -eq 0 ]; then chown -R "$1:" "$2"; fi
}
# The services' own folders live in .data/ when their users can reach it; a clone under a private
# home (/root) cannot be entered by them, so there the folders move to /var/tmp, linked from .data/.
service_dir() { # name user
  local name=$1 user=$2
  # A link whose folder under /var/tmp was removed (a cleaner, a reboot) gets its folder back, empty.
  if [ -L "$data/$name" ] && [ ! -e "$data/$name" ]; then
    mkdir -p "$(readlink "$data/$name")"
    chmod 755 "$(dirname "$(readlink "$data/$name")")"
  fi
  if [ -L "$data/$name" ] || [ -d "$data/$name" ]; then echo "$data/$name"; return; fi
  if [ "$(id -u)" -ne 0 ] || runuser -u "$user" -- test -x "$data"; then
    mkdir -p "$data/$name"
  else
    local away
    away=/var/tmp/brightline-$(echo "$data" | sha1sum | cut -c1-12)/$name
    mkdir -p "$away"
    chmod 755 "$(dirname "$away")"
    ln -s "$away" "$data/$name"
  fi
  echo "$data/$name"
}

random_password() { head -c 18 /dev/urandom | base64 | tr -d '/+=' ; }

pg_start() {
  local dir; dir=$(readlink -f "$(service_dir pg postgres)")
  if [ ! -f "$dir/db/PG_VERSION" ]; then
    echo "stack: initialising PostgreSQL in $dir"
    random_password > "$dir/password"
    chmod 600 "$dir/password"
    own postgres "$dir"
    chmod 700 "$dir"
    as_user postgres "$pg_bin/initdb" -D "$dir/db" -U brightline --pwfile="$dir/password" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
  fi
  if as_user postgres "$pg_bin/pg_ctl" -D "$dir/db" status >/dev/null 2>&1; then
    return
  fi
  if ! as_user postgres "$pg_bin/pg_ctl" -D "$dir/db" -l "$dir/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir -c max_connections=200" >/dev/null; then
    echo "stack: PostgreSQL did not start (port $pg_port; set BL_PG_PORT to move it); its log says:" >&2
    tail -n 5 "$dir/postgres.log" >&2
    exit 1
  fi
  local pw; pw=$(cat "$dir/password")
  if ! PGPASSWORD=$pw psql -h 127.0.0.1 -p "$pg_port" -U brightline -d postgres -tAc \
      "select 1 from pg_database where datname='brightline'" | grep -q 1; then
    PGPASSWORD=$pw psql -h 127.0.0.1 -p "$pg_port" -U brightline -d postgres -qc 'create database brightline' 
  fi
}

pg_stop() {
  [ -f "$data/pg/db/PG_VERSION" ] || return 0
  local dir; dir=$(readlink -f "$data/pg")
  as_user postgres "$pg_bin/pg_ctl" -D "$dir/db" -m fast -w stop >/dev/null 2>&1 || true
}

mqtt_start() {
  local dir; dir=$(readlink -f "$(service_dir mqtt mosquitto)")
  mkdir -p "$dir/persist"
  if [ ! -f "$dir/passwd" ]; then
    random_password > "$dir/dispatch.password"
    chmod 600 "$dir/dispatch.password"
    mosquitto_passwd -b -c "$dir/passwd" dispatch "$(cat "$dir/dispatch.password")" 2>/dev/null
  fi
  # Regenerated every start so a changed port or ACL takes effect; the password file is kept.
  cat >"$dir/acl" <<ACL
# Services see every edge.
user dispatch
topic readwrite bl/v1/#

# An edge (MQTT user name = edge id) publishes only its own state, events and command results, and
# reads only its own commands and config: it can neither speak for another edge nor forge commands.
pattern write bl/v1/edge/%u/state
pattern write bl/v1/edge/%u/events
pattern write bl/v1/edge/%u/cmd/result
pattern read bl/v1/edge/%u/cmd
pattern read bl/v1/edge/%u/config
ACL
  cat >"$dir/mosquitto.conf" <<CONF
# Generated by deploy/dev/stack.sh; edit the script, not this file.
per_listener_settings false
allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl
listener $mqtt_port 127.0.0.1
persistence true
persistence_location $dir/persist/
log_dest file $dir/mosquitto.log
log_type error
log_type warning
log_type notice
connection_messages true
# QoS 1 messages the broker sends a client before it waits for PUBACKs (mosquitto's default is 20):
# dispatch stores what has arrived in one transaction, so this is also its largest batch.
max_inflight_messages 1000
# Beyond max_queued_messages mosquitto DROPS a QoS 1 message for a slow or absent subscriber after
# it has PUBACKed it to the edge, which then deletes it from its outbox: a silent loss. So a limit far
# above any outage: a million events in dispatch's persistent session (about 1 KB each, 1 GB of broker
# memory; hours of the whole district). Not 0 ("no limit"): with 0, mosquitto 2.0.11 disconnects a
# client whose publish the ACL refuses instead of dropping the message (tests/e2e/broker_acl.rs).
max_queued_messages 1000000
pid_file $dir/mosquitto.pid
CONF
  own mosquitto "$dir"
  chmod 700 "$dir"
  if mqtt_running; then
    kill -HUP "$(cat "$dir/mosquitto.pid")" # re-read password and ACL files
    return
  fi
  # One socket per edge: lift the soft limit of open files (runuser's PAM session sets 1024) to the
  # hard limit, or the broker refuses edges beyond about a thousand.
  as_user mosquitto sh -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec mosquitto -c "$1" -d' \
    mosquitto "$dir/mosquitto.conf"
  for _ in $(seq 50); do
    (echo >/dev/tcp/127.0.0.1/"$mqtt_port") 2>/dev/null && return
    sleep 0.1
  done
  echo "stack: mosquitto did not start; see $dir/mosquitto.log" >&2
  tail -n 20 "$dir/mosquitto.log" >&2 || true
  exit 1
}

mqtt_running() {
  [ -f "$data/mqtt/mosquitto.pid" ] && kill -0 "$(cat "$data/mqtt/mosquitto.pid")" 2>/dev/null
}

mqtt_stop() {
  if mqtt_running; then
    local pid; pid=$(cat "$data/mqtt/mosquitto.pid")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$data/mqtt/mosquitto.pid"
}

write_env() {
  cat >"$data/stack.env" <<ENV
# Written by deploy/dev/stack.sh start.
BL_ROOT=$root
BL_DATA=$data
BL_PG_URL=postgres://brightline:$(cat "$data/pg/password")@127.0.0.1:$pg_port/brightline
BL_MQTT_HOST=127.0.0.1
BL_MQTT_PORT=$mqtt_port
BL_MQTT_PASSWD_FILE=$data/mqtt/passwd
BL_MQTT_PID_FILE=$data/mqtt/mosquitto.pid
BL_MQTT_DISPATCH_USER=dispatch
BL_MQTT_DISPATCH_PASSWORD_FILE=$data/mqtt/dispatch.password
ENV
  chmod 600 "$data/stack.env"
  # dispatch reads its database URL from a file (it holds a password).
  sed -n 's/^BL_PG_URL=//p' "$data/stack.env" >"$data/dispatch-db.url"
  chmod 600 "$data/dispatch-db.url"
}

case "${1:-}" in
  start)
    mkdir -p "$data"
    pg_start
    mqtt_start
    write_env
    echo "stack: PostgreSQL on 127.0.0.1:$pg_port, mosquitto on 127.0.0.1:$mqtt_port (details: $data/stack.env)"
    ;;
  stop)
    mqtt_stop
    pg_stop
    echo "stack: stopped"
    ;;
  status)
    if [ -f "$data/pg/db/PG_VERSION" ] && as_user postgres "$pg_bin/pg_ctl" -D "$(readlink -f "$data/pg")/db" status >/dev/null 2>&1; then
      echo "PostgreSQL: running on 127.0.0.1:$pg_port"
    else
      echo "PostgreSQL: stopped"
    fi
    if mqtt_running; then echo "mosquitto:  running on 127.0.0.1:$mqtt_port"; else echo "mosquitto:  stopped"; fi
    ;;
  start-pg) # the database alone, e.g. a test's private one: BL_DATA=DIR BL_PG_PORT=N stack.sh start-pg
    mkdir -p "$data"
    pg_start
    ;;
  stop-pg) # stop-pg [immediate]: `immediate` is a crash (no checkpoint), as a power cut would be
    if [ "${2:-}" = immediate ] && [ -f "$data/pg/db/PG_VERSION" ]; then
      as_user postgres "$pg_bin/pg_ctl" -D "$(readlink -f "$data/pg")/db" -m immediate -w stop >/dev/null 2>&1 || true
    else
      pg_stop
    fi
    ;;
  start-mqtt) # the broker alone, e.g. a test's private one: BL_DATA=DIR BL_MQTT_PORT=N stack.sh start-mqtt
    mkdir -p "$data"
    mqtt_start
    ;;
  stop-mqtt)
    mqtt_stop
    ;;
  mqtt-user)
    # Adds or updates a broker account (an edge's MQTT credentials) and reloads the broker.
    [ $# -eq 3 ] || { echo "usage: $0 mqtt-user NAME PASSWORD" >&2; exit 2; }
    (
      flock 9 # tests add accounts in parallel; one writer of the password file at a time
      mosquitto_passwd -b "$data/mqtt/passwd" "$2" "$3"
      own mosquitto "$(readlink -f "$data/mqtt")"
    ) 9>"$data/mqtt.lock"
    if mqtt_running; then
      kill -HUP "$(cat "$data/mqtt/mosquitto.pid")"
      # The reload is asynchronous: return only once the new account can log in.
      for _ in $(seq 50); do
        mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -u "$2" -P "$3" -t "bl/v1/edge/$2/config" -E \
          -i "stack-probe-$$" 2>/dev/null && break
        sleep 0.1
      done
    fi
    ;;
  mqtt-user-remove)
    # Removes an account (a test's edge box, so test runs leave no accounts behind) and reloads.
    [ $# -eq 2 ] || { echo "usage: $0 mqtt-user-remove NAME" >&2; exit 2; }
    (
      flock 9
      mosquitto_passwd -D "$data/mqtt/passwd" "$2"
      own mosquitto "$(readlink -f "$data/mqtt")"
    ) 9>"$data/mqtt.lock"
    if mqtt_running; then kill -HUP "$(cat "$data/mqtt/mosquitto.pid")"; fi
    ;;
  *)
    echo "usage: $0 start|stop|status|mqtt-user NAME PASSWORD|mqtt-user-remove NAME" >&2
    exit 2
    ;;
esac
