#!/usr/bin/env bash
# Benchmark (not a test): picking up after a fault against starting over.
#
# Starts a docker-registry on 127.0.0.1, copies the example stack into a
# git repository whose images are pushed there, and starts
#   strata build --push
# which it kills with SIGKILL (a runner that dies) as soon as
# datascience-notebook (the second image) is pushed. Then, in the same run,
# times from a cold engine each (the stack's local images and BuildKit's
# cache removed, as on a fresh runner):
#   strata build --push             (the same command again: resumes)
#   strata build --push --no-reuse  (starting over)
# Prints both times, their ratio, and each run's outcomes.
#
# Usage: scripts/bench-resume.sh   (STRATA=path/to/strata to override)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench_strata
./scripts/make-base-image.sh >/dev/null

. scripts/registry.sh
work="$(mktemp -d)"
cold() { cold_engine "${host:-none}/"; }
cleanup() {
  cold
  stop_registry
  rm -rf "$work"
}
trap cleanup EXIT

start_registry
isolated_docker_config

repo="$work/repo"
example_repo "$repo" localhost:5000 "$host"
cd "$repo"

echo "== a run killed once datascience-notebook is pushed (not timed)"
cold
"$STRATA" -q build --push --out "$work/killed" >/dev/null 2>&1 &
pid=$!
until grep -qE 'datascience-notebook:[^ ]+ push ok' "$work/killed/logs/run.log" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "the run ended before datascience-notebook was pushed:" >&2
    cat "$work/killed/logs/run.log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
grep -E ' push ok' "$work/killed/logs/run.log" | sed 's/^/   /'

measure() { # name, extra args...
  local name="$1"; shift
  cold
  local t0 t1
  t0="$(now)"
  "$STRATA" -q build --push "$@" --out "$work/$name" >/dev/null
  t1="$(now)"
  echo "$name $(echo "$t1 - $t0" | bc -l)"
}
resume="$(measure resume)"
fresh="$(measure no-reuse --no-reuse)"
read -r _ resume_s <<<"$resume"
read -r _ fresh_s <<<"$fresh"
outcomes() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(" ".join(i["image"]+"="+i["outcome"] for i in r["images"]))' "$work/$1/artifacts/run.json"; }

echo
echo "the example stack after a run killed halfway (cold engine each)"
printf '  %-22s %8.2f s   (%s)\n' "the same command" "$resume_s" "$(outcomes resume)"
printf '  %-22s %8.2f s   (%s)\n' "--no-reuse" "$fresh_s" "$(outcomes no-reuse)"
printf '  ratio resume / start over: %6.2f\n' "$(echo "$resume_s / $fresh_s" | bc -l)"
