#!/usr/bin/env bash
# The demo's edge box, set up the way an installer does it: the box is registered at dispatch for
# a restaurant in 斋堂镇 with the admin API (one-time code), camsim's cameras are attached to it
# (POST /api/cameras), and `edge-agent enrol` trades the code for the box's
# own broker account and device key. Then its edge.toml is written and it is started.
# Called by demo.sh once dispatch runs; every start enrols again (a fresh code; the key is kept).
#   deploy/dev/demo-edge.sh BIN_DIR DISPATCH_URL
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=${1:?usage: demo-edge.sh BIN_DIR DISPATCH_URL}
dispatch=${2:?usage: demo-edge.sh BIN_DIR DISPATCH_URL}
data=${BL_DATA:-$root/.data}
# shellcheck disable=SC1091
. "$data/stack.env"
edge=demo-edge-zhaitang
box=$data/edge
listen=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' tests/camsim/demo.toml)
cameras=$(sed -n 's/^id *= *"\(.*\)"/\1/p' tests/camsim/demo.toml)
db=$(cat "$data/dispatch-db.url")
fail() { echo "demo-edge: $*" >&2; exit 1; }
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# The first demo restaurant of Zhaitang.
premises=$(psql "$db" -tAqc "SELECT id FROM premises WHERE town_id = 'zhaitang' AND kind = 'restaurant'
                             ORDER BY licence_no LIMIT 1")
[ -n "$premises" ] || fail "no demo restaurant in zhaitang (is demo_data on in deploy/dev/dispatch.toml?)"

# The admin's session (cookie and CSRF token), as the console would hold it.
login=$(curl -sS -i -H 'content-type: application/json' \
  --data "{\"username\":\"admin\",\"password\":\"$(cat "$data/dispatch/admin.password")\"}" \
  "$dispatch/api/session") || fail "dispatch does not answer at $dispatch"
session=$(printf '%s' "$login" | sed -n 's/^[Ss]et-[Cc]ookie: __Host-bl_session=\([^;]*\).*/\1/p' | tr -d '\r')
csrf=$(printf '%s' "$login" | json_field csrfToken)
[ -n "$session" ] && [ -n "$csrf" ] || fail "admin login refused: $(printf '%s' "$login" | tail -n 1)"
api() { # METHOD PATH [JSON] → the body; the HTTP status on the last line
  curl -sS -X "$1" -H "cookie: __Host-bl_session=$session" -H "x-csrf-token: $csrf" \
    -H 'content-type: application/json' ${3:+--data "$3"} -w '\n%{http_code}' "$dispatch$2"
}

# The box: registered once (201 with a code); on later starts it exists (409) and gets a new code.
answer=$(api POST /api/edges "{\"id\":\"$edge\",\"premisesId\":\"$premises\"}")
if [ "$(printf '%s' "$answer" | tail -n 1)" = 409 ]; then
  answer=$(api POST "/api/edges/$edge/enrolment-code" '{}')
fi
code=$(printf '%s' "$answer" | json_field enrolmentCode)
[ -n "$code" ] || fail "no enrolment code for $edge: $answer"

# Its cameras: camsim's, pushed by the box (on later starts they exist: 409).
for c in $cameras; do
  answer=$(api POST /api/cameras "{\"id\":\"$c\",\"premisesId\":\"$premises\",\"name\":\"camsim $c\",\"source\":\"edge\",\"edgeId\":\"$edge\",\"mainStream\":\"main\",\"subStream\":\"sub\"}")
  case $(printf '%s' "$answer" | tail -n 1) in
    201 | 409) ;;
    *) fail "camera $c refused: $answer" ;;
  esac
done
api DELETE /api/session >/dev/null || true

# Enrolment on the box: the code goes in a file (not on a command line), used once, then removed.
mkdir -p "$box"
chmod 700 "$box"
printf '%s\n' "$code" >"$box/enrolment.code"
chmod 600 "$box/enrolment.code"
"$bin/edge-agent" enrol --dispatch "$dispatch" --edge-id "$edge" --code-file "$box/enrolment.code" \
  --dir "$box" >"$box/edge.toml.new"
rm -f "$box/enrolment.code"
gateway=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' deploy/dev/gateway.toml)
{
  cat "$box/edge.toml.new"
  # Snapshots and clips of episodes go to the demo gateway, signed with the box's device key; live
  # video goes there too, pushed on the gateway's startLive (through dispatch).
  echo "[evidence]"
  echo "url = \"http://$gateway\""
  for c in $cameras; do
    echo "[[camera]]"
    echo "id = \"$c\""
    echo "url = \"rtsp://$listen/cam/$c/sub\""
    echo "main_url = \"rtsp://$listen/cam/$c\""
    case $c in *night*) echo "rodent = true" ;; esac
  done
} >"$box/edge.toml"
rm -f "$box/edge.toml.new"
deploy/dev/service.sh start edge-agent 'cameras started' "$bin/edge-agent" run --config "$box/edge.toml"
