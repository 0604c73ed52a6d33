#!/usr/bin/env bash
# Benchmark (not a test): promotion inside the registry (`strata promote`)
# against the docker way (`docker pull` + `docker tag` + `docker push`) of
# the same images to the same registry.
#
# Starts a docker-registry on 127.0.0.1, builds and pushes a stack of
# $BENCH_IMAGES images (root → child → …), each adding a layer of random
# bytes made at build time, then, in the same run, times
#   strata promote --from <prefix>-<sha> --to <prefix>-stable
# and, after removing the local images so the pulls are real,
#   docker pull + docker tag + docker push to <prefix>-docker-stable
# of every image. Repeats for each size of $BENCH_SIZES (bytes per layer)
# to show that promotion time does not grow with image size.
#
# Usage: scripts/bench-promote.sh   (BENCH_SIZES="200000000 20000000"
#        BENCH_IMAGES=4 STRATA=path/to/strata to override)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

SIZES="${BENCH_SIZES:-200000000 20000000}"
COUNT="${BENCH_IMAGES:-4}"
PREFIX="bench"

if [[ -z "${STRATA:-}" ]]; then
  cargo build --quiet -p strata-cli
  STRATA="$ROOT/target/debug/strata"
fi
./scripts/make-base-image.sh >/dev/null

. scripts/registry.sh
work="$(mktemp -d)"
refs_file="$work/refs"
: >"$refs_file"
cleanup() {
  if [[ -s "$refs_file" ]]; then
    sort -u "$refs_file" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  fi
  stop_registry
  rm -rf "$work"
}
trap cleanup EXIT

start_registry

now() { date +%s.%N; }
export DOCKER_CONFIG="$work/docker-config"
mkdir -p "$DOCKER_CONFIG"
echo '{}' >"$DOCKER_CONFIG/config.json"

images=(root)
for i in $(seq 2 "$COUNT"); do images+=("layer$i"); done

results=()
for size in $SIZES; do
  ns="$host/bench-$size"
  repo="$work/repo-$size"
  mkdir -p "$repo/images"
  git -C "$repo" init -q -b main
  {
    echo "root: root"
    echo "images:"
    parent=""
    for img in "${images[@]}"; do
      echo "  $img:"
      echo "    image_name: $ns/$img"
      [[ -n "$parent" ]] && echo "    depend_on: $parent"
      parent="$img"
    done
    echo "tag:"
    echo "  prefix: \"$PREFIX\""
  } >"$repo/images/spec.yml"
  parent=""
  for img in "${images[@]}"; do
    mkdir -p "$repo/images/$img"
    if [[ -z "$parent" ]]; then
      echo "FROM strata-test/busybox:latest" >"$repo/images/$img/Dockerfile"
    else
      printf 'ARG BASE_TAG\nFROM %s/%s:${BASE_TAG}\n' "$ns" "$parent" >"$repo/images/$img/Dockerfile"
    fi
    echo "RUN head -c $size /dev/urandom > /blob-$img" >>"$repo/images/$img/Dockerfile"
    parent="$img"
  done
  git -C "$repo" add -A
  git -C "$repo" -c user.name=bench -c user.email=bench@example.invalid commit -qm bench
  sha="$(git -C "$repo" rev-parse --short=7 HEAD)"
  tag="$PREFIX-$sha"
  for img in "${images[@]}"; do
    echo "$ns/$img:$tag" >>"$refs_file"
    echo "$ns/$img:$PREFIX-docker-stable" >>"$refs_file"
  done

  echo "== $COUNT images, $((size / 1000000)) MB of random bytes each: building and pushing (not timed)"
  (cd "$repo" && "$STRATA" -q build --push --jobs 1 --out "$work/out-$size")

  t0="$(now)"
  (cd "$repo" && "$STRATA" -q promote --from "$tag" --to "$PREFIX-stable" >/dev/null)
  t1="$(now)"
  strata_s="$(echo "$t1 - $t0" | bc -l)"

  # The docker way, from a cold engine: remove the local images first.
  for img in "${images[@]}"; do docker rmi -f "$ns/$img:$tag" >/dev/null; done
  t0="$(now)"
  for img in "${images[@]}"; do
    docker pull -q "$ns/$img:$tag" >/dev/null
    docker tag "$ns/$img:$tag" "$ns/$img:$PREFIX-docker-stable"
    docker push -q "$ns/$img:$PREFIX-docker-stable" >/dev/null
  done
  t1="$(now)"
  docker_s="$(echo "$t1 - $t0" | bc -l)"

  # Both ways must name the same manifests.
  for img in "${images[@]}"; do
    a="$(curl -fsSI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$host/v2/bench-$size/$img/manifests/$PREFIX-stable" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')"
    b="$(curl -fsSI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$host/v2/bench-$size/$img/manifests/$tag" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')"
    [[ -n "$a" && "$a" == "$b" ]] || { echo "bench-promote: $img:$PREFIX-stable is $a, $tag is $b" >&2; exit 1; }
  done

  ratio="$(echo "$docker_s / $strata_s" | bc -l)"
  line="$(printf '%4d MB x %d images: strata promote %6.2f s, docker pull+tag+push %7.2f s, ratio %6.1fx' \
    "$((size / 1000000))" "$COUNT" "$strata_s" "$docker_s" "$ratio")"
  echo "$line"
  results+=("$line")

  # Free the engine before the next size.
  for img in "${images[@]}"; do
    docker rmi -f "$ns/$img:$tag" "$ns/$img:$PREFIX-docker-stable" >/dev/null 2>&1 || true
  done
done

echo
echo "== results (goal: strata >= 50x faster, and flat in image size)"
printf '%s\n' "${results[@]}"
