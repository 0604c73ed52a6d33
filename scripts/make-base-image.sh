#!/usr/bin/env bash
# Builds the local base image strata's tests use, strata-test/busybox:latest:
# FROM scratch plus Debian's static busybox (package busybox-static), with the
# applets installed as symlinks in /bin. Nothing is pulled from anywhere.
# Idempotent: when the image already exists it is left alone. Prints the
# image id on stdout.
set -euo pipefail

IMAGE="${STRATA_BASE_IMAGE:-strata-test/busybox:latest}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"

# Tests call this concurrently: one build at a time, the others then find it.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/strata-make-base-image.lock"
  flock 9
fi

if id="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null)"; then
  echo "$id"
  exit 0
fi

if ! file_out="$(file -L "$BUSYBOX" 2>/dev/null)" || ! grep -q 'statically linked' <<<"$file_out"; then
  # `file` may be missing; fall back to asking busybox itself.
  if ! "$BUSYBOX" --help 2>&1 | head -n1 | grep -q BusyBox; then
    echo "make-base-image: $BUSYBOX is not a busybox binary; install busybox-static (scripts/setup.sh)" >&2
    exit 2
  fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp -L "$BUSYBOX" "$tmp/busybox"
cat >"$tmp/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
DOCKERFILE

# The classic builder: BuildKit may be unavailable and needs nothing here.
if ! DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$tmp" >/dev/null 2>"$tmp/build.err"; then
  cat "$tmp/build.err" >&2
  exit 1
fi
docker image inspect --format '{{.Id}}' "$IMAGE"
