#!/usr/bin/env bash
# Installs the cargo tools the project uses, from crates.io, only those missing.
set -euo pipefail
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "install-tools: installing cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "install-tools: installing cargo-nextest"
  cargo install --locked --quiet cargo-nextest
fi
