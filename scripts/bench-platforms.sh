#!/usr/bin/env bash
# Benchmark (not a test): the example stack built for its two platforms
# (linux/amd64 and linux/arm64, the latter under QEMU on an amd64 machine)
# against the same build for one (--platform linux/amd64), in the same run,
# each from a cold engine (the stack's images and BuildKit's cache removed).
#
# Usage: scripts/bench-platforms.sh   (STRATA=path/to/strata to override)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench_strata
./scripts/setup.sh >/dev/null

work="$(mktemp -d)"
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "bench-platforms/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

repo="$work/repo"
example_repo "$repo" strata-example bench-platforms
cold() { cold_engine "bench-platforms/"; }
measure() { # extra args...
  cold
  local t0 t1
  t0="$(now)"
  (cd "$repo" && "$STRATA" -q build --all --offline --no-push --no-reuse "$@" --out "$work/out" >/dev/null)
  t1="$(now)"
  echo "$t1 - $t0" | bc -l
}
one="$(measure --platform linux/amd64)"
two="$(measure)"
echo
echo "example stack, 4 images, full build with tests and manifests (cold engine each)"
printf '  %-36s %8.2f s\n' "one platform (linux/amd64)" "$one"
printf '  %-36s %8.2f s\n' "two platforms (+ linux/arm64, QEMU)" "$two"
printf '  ratio two / one:                     %8.2f\n' "$(echo "$two / $one" | bc -l)"
