#!/usr/bin/env bash
# Benchmark (not a test): the example stack built for its two platforms
# (linux/amd64 and linux/arm64, the latter under QEMU on an amd64 machine)
# against the same build for one (--platform linux/amd64), in the same run,
# each from a cold engine (the stack's images and BuildKit's cache removed).
#
# Usage: scripts/bench-platforms.sh   (STRATA=path/to/strata to override)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

if [[ -z "${STRATA:-}" ]]; then
  cargo build --quiet --release -p strata-cli
  STRATA="$ROOT/target/release/strata"
fi
./scripts/setup.sh >/dev/null

work="$(mktemp -d)"
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "bench-platforms/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

repo="$work/repo"
mkdir -p "$repo"
cp -r example/images "$repo/images"
cp /bin/busybox "$repo/images/base-notebook/busybox-amd64"
cp /usr/local/share/strata/busybox-arm64 "$repo/images/base-notebook/busybox-arm64"
grep -rl 'strata-example' "$repo/images" | xargs sed -i "s#strata-example#bench-platforms#g"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@example.invalid commit -qm "the example stack"

now() { date +%s.%N; }
cold() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "bench-platforms/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  docker builder prune -af >/dev/null 2>&1 || true
}
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
