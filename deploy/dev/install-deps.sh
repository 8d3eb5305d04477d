#!/usr/bin/env bash
# Installs the system packages Brightline builds and tests with (Debian 12 / Ubuntu), only those missing.
# Idempotent: a second run with everything present touches nothing and needs no network.
set -euo pipefail

packages=(
  # build
  pkg-config clang libclang-dev build-essential
  # GStreamer 1.22: core, plugins, RTSP server, WebRTC ICE
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libgstrtspserver-1.0-dev gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice
  gstreamer1.0-rtsp
  # detection
  libopencv-dev
  # services
  postgresql mosquitto mosquitto-clients
  # tools we test against
  ffmpeg chromium espeak-ng sox
  # the drill report test turns its PDF into a PNG
  poppler-utils
  # Chinese glyphs for the web console's browser tests and screenshots
  fonts-noto-cjk
  # the detection model's PyPI package and the S3 test server (moto, in a virtualenv) come through pip
  python3-pip python3-venv
  # the peer of the live fan-out benchmark (`make bench`): Janus's streaming plugin fed the same RTP
  janus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js may come from another source (nodesource ships npm inside nodejs); only add Debian's if absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged services on install; ours run privately under .data/, so stop the system ones.
for svc in mosquitto postgresql janus; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
echo "install-deps: done"
