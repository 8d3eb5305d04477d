#!/usr/bin/env bash
# The demo's edge box: registers one edge with camsim's cameras at a restaurant in 斋堂镇 (idempotent),
# gives it a broker account, writes its edge.toml and starts it. Called by demo.sh after dispatch.
#   deploy/dev/demo-edge.sh BIN_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=${1:?usage: demo-edge.sh BIN_DIR}
data=${BL_DATA:-$root/.data}
# shellcheck disable=SC1091
. "$data/stack.env"
edge=demo-edge-zhaitang
listen=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' tests/camsim/demo.toml)
cameras=$(sed -n 's/^id *= *"\(.*\)"/\1/p' tests/camsim/demo.toml)

# The registry: the first demo restaurant of Zhaitang gets the edge and camsim's cameras.
{
  echo "\\set ON_ERROR_STOP on"
  echo "INSERT INTO edges (id, premises_id)
          SELECT '$edge', id FROM premises WHERE town_id = 'zhaitang' AND kind = 'restaurant'
          ORDER BY licence_no LIMIT 1
        ON CONFLICT (id) DO NOTHING;"
  for c in $cameras; do
    echo "INSERT INTO cameras (id, premises_id, name, source, edge_id, main_stream, sub_stream)
            SELECT '$c', premises_id, 'camsim $c', 'edge', id, 'main', 'sub' FROM edges WHERE id = '$edge'
          ON CONFLICT (id) DO NOTHING;"
  done
} | psql "$(cat "$data/dispatch-db.url")" -q >/dev/null

# Its broker account (a new password each start) and its config.
mkdir -p "$data/edge"
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
deploy/dev/stack.sh mqtt-user "$edge" "$password" >/dev/null
printf '%s\n' "$password" >"$data/edge/mqtt.password"
chmod 600 "$data/edge/mqtt.password"
{
  echo "# Written by deploy/dev/demo-edge.sh."
  echo "edge_id = \"$edge\""
  echo "[mqtt]"
  echo "host = \"127.0.0.1\""
  echo "port = $BL_MQTT_PORT"
  echo "password_file = \"mqtt.password\""
  for c in $cameras; do
    echo "[[camera]]"
    echo "id = \"$c\""
    echo "url = \"rtsp://$listen/cam/$c/sub\""
    case $c in *night*) echo "rodent = true" ;; esac
  done
} >"$data/edge/edge.toml"
deploy/dev/service.sh start edge-agent 'cameras started' "$bin/edge-agent" run --config "$data/edge/edge.toml"
