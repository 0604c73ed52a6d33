#!/usr/bin/env bash
# Runs strata's whole test suite on a fresh Debian machine: installs what the
# tests need (scripts/setup.sh), makes the local base images (busybox, and
# Debian with Python for the SBOM tests), then runs
# every test of the workspace against the real engine, registry and git.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/make-base-image.sh >/dev/null
./scripts/make-debian-image.sh >/dev/null
cargo test --workspace --locked "$@"
