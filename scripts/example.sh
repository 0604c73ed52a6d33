#!/usr/bin/env bash
# The example stack, end to end: install what it needs, build strata, show
# the plan, then build, test and document every image of example/images.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked --bin strata
# The root image is FROM scratch plus Debian's static busybox of each
# platform (amd64's and arm64's, which setup.sh installs); the binaries are
# copied into its build context rather than kept in git.
cp /bin/busybox example/images/base-notebook/busybox-amd64
cp /usr/local/share/strata/busybox-arm64 example/images/base-notebook/busybox-arm64
cd example
../target/release/strata plan --all --offline
../target/release/strata build --all --offline --no-push "$@"
echo "manifests: $(pwd)/manifests"
