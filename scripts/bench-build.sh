#!/usr/bin/env bash
# Benchmarks of `strata build` (not a test): prints the figures side by side.
#
#  1. parallelism: a root and 4 independent children, each child `RUN sleep 4`
#     (a per-run nonce build arg defeats the cache), --jobs 4 vs --jobs 1.
#     Goal: ratio <= 0.30.
#  2. an uncached stack (the same, without the sleep; a fresh nonce rebuilds
#     every step): strata with --jobs 1 and with the default --jobs against
#     sequential `docker build` of the same Dockerfiles with the classic
#     builder (DOCKER_BUILDKIT=0). Goals: <= 1.10 and <= 0.75.
#  2b. a fully cached stack: strata vs plain sequential `docker build` of the
#     same Dockerfiles, both after a warm-up build. Goal: ratio <= 1.1.
#  3. peak memory (max RSS) of strata with a 1 GB file in an image folder,
#     .dockerignore'd out and sent in the build context. Goal: < 100 MB.
#
# Everything it makes (images, the repo, the 1 GB file) is removed at the end.
# Usage: scripts/bench-build.sh [--skip-memory]   (KEEP=1 keeps the work folder)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
SKIP_MEMORY=0
[[ "${1:-}" == "--skip-memory" ]] && SKIP_MEMORY=1

if [[ ! -x /usr/bin/time ]]; then
  echo "bench-build: /usr/bin/time is missing: apt-get install time" >&2
  exit 2
fi
cargo build --release --locked --bin strata >&2
STRATA="$ROOT/target/release/strata"
./scripts/make-base-image.sh >/dev/null
export DOCKER_BUILDKIT=0 # the baseline: the classic builder

PREFIX="strata-bench-$$"
WORK="$(mktemp -d)"
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "$PREFIX" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  # Children whose tag moved to a newer build (untagged now), found by their base label.
  docker images -q --filter "label=org.opencontainers.image.base.name=$PREFIX/root:${TAG:-none}" |
    xargs -r docker rmi -f >/dev/null 2>&1 || true
  [[ -n "${KEEP:-}" ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# A git repository with a stack: root + 4 children that sleep. Each child's
# RUN differs: with identical steps on the same parent, the classic builder's
# cache may pick a sibling's layer and miss on the steps after it.
REPO="$WORK/repo"
mkdir -p "$REPO/images/root"
cd "$REPO"
git init -q -b main
{
  echo "root: root"
  echo "images:"
  echo "  root:"
  echo "    image_name: $PREFIX/root"
  for c in c1 c2 c3 c4; do
    echo "  $c:"
    echo "    image_name: $PREFIX/$c"
    echo "    depend_on: root"
  done
  echo "tag:"
  echo "  prefix: \"b1\""
} >images/spec.yml
cat >images/root/Dockerfile <<EOF
FROM strata-test/busybox:latest
ARG NONCE=none
RUN echo "\$NONCE root" > /layers.txt
EOF
for c in c1 c2 c3 c4; do
  mkdir -p "images/$c"
  cat >"images/$c/Dockerfile" <<EOF
ARG BASE_TAG
FROM $PREFIX/root:\${BASE_TAG}
ARG NONCE=none
ARG SLEEP=4
RUN echo "\$NONCE $c" > /nonce && sleep \$SLEEP
EOF
done
git -c user.name=b -c user.email=b@e add -A
git -c user.name=b -c user.email=b@e commit -qm stack
TAG="$("$STRATA" plan --all --offline --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["builds"][0]["tag"])')"

build() { # OUT ARGS...: strata build, quiet, must succeed
  local out="$1"
  shift
  "$STRATA" -q build --all --offline --no-push --out "$WORK/$out" "$@"
}

# 1. parallelism -------------------------------------------------------------
echo "== 1. 4 independent children with RUN sleep 4: --jobs 4 vs --jobs 1" >&2
build warm --build-arg NONCE=warm-$$ >/dev/null
t0=$(now)
build j4 --jobs 4 --build-arg NONCE=j4-$$-$RANDOM
t1=$(now)
build j1 --jobs 1 --build-arg NONCE=j1-$$-$RANDOM
t2=$(now)
J4=$(elapsed "$t0" "$t1")
J1=$(elapsed "$t1" "$t2")

dbuild() { # docker build, quiet unless it fails
  docker build -q "$@" >/dev/null 2>"$WORK/dbuild.err" || { cat "$WORK/dbuild.err" >&2; return 1; }
}
plain() { # NONCE [SLEEP]: the stack with sequential classic `docker build`
  dbuild -t "$PREFIX-plain/root:$TAG" --build-arg NONCE="$1" images/root
  for c in c1 c2 c3 c4; do
    # The same Dockerfiles, built on the plain root.
    sed "s#$PREFIX/root#$PREFIX-plain/root#" "images/$c/Dockerfile" >"$WORK/$c.Dockerfile"
    dbuild -f "$WORK/$c.Dockerfile" -t "$PREFIX-plain/$c:$TAG" \
      --build-arg BASE_TAG="$TAG" --build-arg NONCE="$1" --build-arg SLEEP="${2:-4}" "images/$c"
  done
}

# 2. an uncached stack --------------------------------------------------------
echo "== 2. uncached: strata (--jobs 1, default) vs sequential classic docker build" >&2
t0=$(now)
plain "plain-$$-$RANDOM" 0
t1=$(now)
build u1 --jobs 1 --build-arg NONCE=u1-$$-$RANDOM --build-arg SLEEP=0
t2=$(now)
build ud --build-arg NONCE=ud-$$-$RANDOM --build-arg SLEEP=0
t3=$(now)
PLAIN_UNCACHED=$(elapsed "$t0" "$t1")
STRATA_U1=$(elapsed "$t1" "$t2")
STRATA_UD=$(elapsed "$t2" "$t3")

# 2b. a fully cached stack ----------------------------------------------------
echo "== 2. fully cached: strata vs sequential docker build" >&2
NONCE="cached-$$"
build cached-warm --build-arg NONCE="$NONCE" >/dev/null
t0=$(now)
build cached --build-arg NONCE="$NONCE"
t1=$(now)
STRATA_CACHED=$(elapsed "$t0" "$t1")
plain "$NONCE" # warm-up
t0=$(now)
plain "$NONCE"
t1=$(now)
PLAIN_CACHED=$(elapsed "$t0" "$t1")

# 3. peak memory with a 1 GB build context ------------------------------------
maxrss_mb() { # OUT ARGS...: strata's max RSS in MB
  local out="$1"
  shift
  /usr/bin/time -v -o "$WORK/$out.time" "$STRATA" -q build --all --offline --no-push \
    --out "$WORK/$out" "$@" >/dev/null
  awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/$out.time"
}
if [[ $SKIP_MEMORY == 0 ]]; then
  echo "== 3. peak memory with a 1 GB file in an image folder" >&2
  head -c 1G /dev/urandom >images/c1/blob
  echo blob >images/c1/.dockerignore
  IGNORED_MB=$(maxrss_mb mem-ignored --only c1 --build-arg NONCE="$NONCE")
  rm images/c1/.dockerignore
  echo "COPY blob /blob" >>images/c1/Dockerfile
  SENT_MB=$(maxrss_mb mem-sent --only c1 --build-arg NONCE="$NONCE")
  # The folder has uncommitted changes now, so the tag ends in -dirty.
  SENT_REF=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"][0]["ref"])' "$WORK/mem-sent/artifacts/run.json")
  SIZE=$(docker image inspect --format '{{.Size}}' "$SENT_REF")
  [[ $SIZE -gt 1000000000 ]] || { echo "bench-build: the 1 GB file was not sent (image is $SIZE bytes)" >&2; exit 1; }
  rm -f images/c1/blob
  git checkout -q images/c1/Dockerfile
else
  IGNORED_MB=skipped
  SENT_MB=skipped
fi

echo
echo "strata build benchmarks ($(nproc) cores, Docker $(docker version --format '{{.Server.Version}}'))"
row() { printf '| %-45s | %-9s | %-8s |\n' "$1" "$2" "$3"; }
row figure value goal
row "---" "---" "---"
row "4 children sleeping 4s, --jobs 4" "${J4}s" ""
row "4 children sleeping 4s, --jobs 1" "${J1}s" ""
row "ratio jobs 4 / jobs 1" "$(ratio "$J4" "$J1")" "<= 0.30"
row "uncached stack, sequential classic docker build" "${PLAIN_UNCACHED}s" ""
row "uncached stack, strata --jobs 1" "${STRATA_U1}s" ""
row "uncached stack, strata default --jobs" "${STRATA_UD}s" ""
row "ratio strata --jobs 1 / docker build" "$(ratio "$STRATA_U1" "$PLAIN_UNCACHED")" "<= 1.10"
row "ratio strata default --jobs / docker build" "$(ratio "$STRATA_UD" "$PLAIN_UNCACHED")" "<= 0.75"
row "fully cached stack, strata" "${STRATA_CACHED}s" ""
row "fully cached stack, sequential docker build" "${PLAIN_CACHED}s" ""
row "ratio strata / docker build" "$(ratio "$STRATA_CACHED" "$PLAIN_CACHED")" "<= 1.1"
row "max RSS, 1 GB file .dockerignore'd" "${IGNORED_MB} MB" "< 100 MB"
row "max RSS, 1 GB file sent in the context" "${SENT_MB} MB" "< 100 MB"
