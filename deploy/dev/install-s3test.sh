#!/usr/bin/env bash
# Installs a local S3-compatible server for the gateway's S3 evidence-store tests into
# .data/s3test/ (or $BL_S3TEST_DIR), once: `moto[server]` from PyPI in its own virtualenv, so the
# system Python is untouched. Tests start `.data/s3test/bin/moto_server` on a free port; nothing is
# downloaded when tests run, and the S3 tests are skipped (with a message) when it is absent.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${BL_S3TEST_DIR:-$root/.data/s3test}"
package="moto[server]==5.2.5"

if [ -x "$dest/bin/moto_server" ] && "$dest/bin/python" -c 'import moto' 2>/dev/null; then
  echo "install-s3test: moto present in $dest"
  exit 0
fi
python3 -m venv --help >/dev/null 2>&1 || {
  echo "install-s3test: python3 with venv is needed (apt-get install python3-venv)" >&2
  exit 1
}
echo "install-s3test: installing $package into $dest"
rm -rf "$dest"
trap 'rm -rf "$dest"' ERR
python3 -m venv "$dest"
"$dest/bin/pip" install --quiet --disable-pip-version-check "$package"
echo "install-s3test: moto in $dest"
