#!/usr/bin/env bash
# The second half of `make demo` (after packages, the dev stack and the build): starts the
# simulated cameras and dispatch, then says what runs where.
#   deploy/dev/demo.sh BIN_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=${1:?usage: demo.sh BIN_DIR}
data=${BL_DATA:-$root/.data}
# shellcheck disable=SC1091
. "$data/stack.env"

deploy/dev/service.sh start camsim 'camsim listening on' \
  "$bin/camsim" --config tests/camsim/demo.toml --truth-dir "$data/camsim/truth"

# The admin's password is made once and kept, so every demo start can show it.
mkdir -p "$data/dispatch"
if [ ! -s "$data/dispatch/admin.password" ]; then
  head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$data/dispatch/admin.password"
  chmod 600 "$data/dispatch/admin.password"
fi
# dispatch's config is deploy/dev/dispatch.toml with this stack's data folder and broker port put in
# (the same file for the default stack; a private BL_DATA / BL_MQTT_PORT demo gets its own).
sed -e "s#\"\.data/#\"$data/#" -e "s/^\(broker_\)\{0,1\}port = 18883\$/\1port = $BL_MQTT_PORT/" \
  deploy/dev/dispatch.toml >"$data/dispatch/dispatch.toml"

# The media gateway relays camsim's cameras to browsers (WHEP). dispatch signs live tokens with a key
# made once; the gateway verifies them with its public half.
mkdir -p "$data/gateway"
[ -s "$data/gateway/dispatch-token" ] || "$bin/media-gateway" keygen "$data/gateway/dispatch-token" >/dev/null
# The gateway's service token for dispatch's /internal API, made once.
if [ ! -s "$data/gateway/service.token" ]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$data/gateway/service.token")
fi
# The demo box's device key is made now (enrolment keeps it) so that the gateway knows it from its
# [[edge]] table at once. Camera sources come from dispatch ([dispatch] in gateway.toml): the demo's
# cameras are registered as pushed by the box, so live video comes from the box on startLive.
mkdir -p "$data/edge"
chmod 700 "$data/edge"
"$bin/edge-agent" keygen "$data/edge/device.key" >/dev/null
{
  sed -e "s#\"\.data/#\"$data/#" deploy/dev/gateway.toml
  printf '\n[[edge]]\nid = "demo-edge-zhaitang"\npublic_key = "%s"\n' "$(cat "$data/edge/device.key.pub")"
} >"$data/gateway/gateway.toml"
deploy/dev/service.sh start media-gateway 'media-gateway listening' \
  "$bin/media-gateway" run --config "$data/gateway/gateway.toml"

deploy/dev/service.sh start dispatch 'dispatch listening' "$bin/dispatch" --config "$data/dispatch/dispatch.toml"
console=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' deploy/dev/dispatch.toml)
deploy/dev/demo-edge.sh "$bin" "http://$console"

listen=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' tests/camsim/demo.toml)
demo_password=$(sed -n 's/^demo users password: //p' "$data/logs/dispatch.log" | tail -n 1)
cat <<MSG

Brightline demo is running.
  console      http://$console/   (field app for phones: http://$console/field; the API is under /api)
  admin        user admin, password $(cat "$data/dispatch/admin.password")
  demo users   operator, supervisor, town officers, field staff…: password ${demo_password:-(printed at the first start, see $data/logs/dispatch.log)}
  PostgreSQL   127.0.0.1:${BL_PG_URL##*:}  (user brightline, password in $data/pg/password)
  mosquitto    127.0.0.1:$BL_MQTT_PORT  (service account dispatch, password in $BL_MQTT_DISPATCH_PASSWORD_FILE)
  gateway      http://127.0.0.1:8090  (live video of the demo cameras over WebRTC; click 看实况 on a camera)
  edge box     demo-edge-zhaitang (a restaurant in 斋堂镇), enrolled with a one-time code
               (edge-agent enrol; key and config in $data/edge/), watches the cameras below;
               its rodent reports become incidents: GET /api/incidents; each episode's
               snapshots and clip (signed by the box) land in $data/gateway/evidence/blobs/
  cameras      simulated by camsim, ground truth in $data/camsim/truth
MSG
for c in $(sed -n 's/^id *= *"\(.*\)"/\1/p' tests/camsim/demo.toml); do
  echo "               rtsp://$listen/cam/$c   (sub stream: …/cam/$c/sub)"
done
cat <<MSG
  logs         $data/logs/      stop with: make stop
MSG
