#!/usr/bin/env bash
# Says what `make demo` started and where to reach it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=${BL_DATA:-$root/.data}
# shellcheck disable=SC1091
. "$data/stack.env"
cams=$(grep -A1 '^\[\[camera\]\]' "$root/tests/camsim/demo.toml" | sed -n 's/^id *= *"\(.*\)"/\1/p')
listen=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' "$root/tests/camsim/demo.toml")
cat <<MSG

Brightline demo is running.
  PostgreSQL   ${BL_PG_URL%%:*}://brightline@127.0.0.1:${BL_PG_URL##*:} (password in $data/pg/password)
  mosquitto    mqtt://127.0.0.1:$BL_MQTT_PORT (service account 'dispatch', password in $BL_MQTT_DISPATCH_PASSWORD_FILE)
  cameras      (simulated by camsim; ground truth in $data/camsim/truth)
MSG
for c in $cams; do
  echo "    rtsp://$listen/cam/$c    (sub stream: rtsp://$listen/cam/$c/sub)"
done
cat <<MSG
  console      not yet: dispatch and the web console are still to be built (issues 5 and 6)
  logs         $data/logs/    stop with: make stop
MSG
