#!/usr/bin/env bash
# Benchmark (not a test): the build of a merge commit with reuse of
# identical inputs against the same build with --no-reuse.
#
# Starts a docker-registry on 127.0.0.1 (its access log counts requests),
# copies the example stack into a git repository whose images are pushed
# there, builds and pushes main, then a branch that changes
# datascience-notebook (so it and scipy-ml-notebook rebuild), merges the
# branch into main with a merge commit, and, in the same run, times
#   strata build --push            (the merge: everything reused)
#   strata build --push --no-reuse (the same build, for real)
# each from a cold engine: the stack's local images and BuildKit's cache
# are removed before each. Prints both times, their ratio, and the
# registry requests of each run and of its `strata plan` (the lookups).
#
# Usage: scripts/bench-reuse.sh   (STRATA=path/to/strata to override)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench_strata
./scripts/make-base-image.sh >/dev/null

. scripts/registry.sh
work="$(mktemp -d)"
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "${host:-none}/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  stop_registry
  rm -rf "$work"
}
trap cleanup EXIT

start_registry
isolated_docker_config

# Registry requests so far: the access log's request lines.
requests() { grep -cE '"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/' "$work/registry.log" || true; }
cold() { cold_engine "$host/"; }

repo="$work/repo"
example_repo "$repo" localhost:5000 "$host"
git() { command git -C "$repo" -c user.name=bench -c user.email=bench@example.invalid "$@"; }
cd "$repo"

echo "== main: building and pushing the example stack (not timed)"
"$STRATA" -q build --push --out "$work/main" >/dev/null
git checkout -q -b feature
echo "# a change of the branch" >>images/datascience-notebook/Dockerfile
git commit -qam "datascience-notebook: a change"
echo "== the branch: building and pushing its change (not timed)"
"$STRATA" -q build --push --out "$work/branch" >/dev/null
git checkout -q main
git merge -q --no-ff -m "Merge branch 'feature'" feature

measure() { # name, extra args...
  local name="$1"; shift
  cold
  local r0 r1 r2 t0 t1
  r0="$(requests)"
  "$STRATA" -q plan "$@" --format json >"$work/plan-$name.json"
  r1="$(requests)"
  t0="$(now)"
  "$STRATA" -q build --push "$@" --out "$work/$name" >/dev/null
  t1="$(now)"
  r2="$(requests)"
  echo "$name $(echo "$t1 - $t0" | bc -l) $((r1 - r0)) $((r2 - r1))"
}
reuse="$(measure reuse)"
fresh="$(measure no-reuse --no-reuse)"
read -r _ reuse_s reuse_plan reuse_run <<<"$reuse"
read -r _ fresh_s fresh_plan fresh_run <<<"$fresh"
outcomes() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(" ".join(i["image"]+"="+i["outcome"] for i in r["images"]))' "$work/$1/artifacts/run.json"; }

echo
echo "merge build of the example stack (2 images rebuilt by the merge; cold engine each)"
printf '  %-26s %8.2f s   plan: %3d registry requests, build: %4d   (%s)\n' "with reuse" "$reuse_s" "$reuse_plan" "$reuse_run" "$(outcomes reuse)"
printf '  %-26s %8.2f s   plan: %3d registry requests, build: %4d   (%s)\n' "--no-reuse" "$fresh_s" "$fresh_plan" "$fresh_run" "$(outcomes no-reuse)"
printf '  ratio reuse / no-reuse:    %8.2f\n' "$(echo "$reuse_s / $fresh_s" | bc -l)"
