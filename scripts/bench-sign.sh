#!/usr/bin/env bash
# Benchmark (not a test): what signing adds to a push of the example stack.
#
# Starts a docker-registry on 127.0.0.1 and, in the same run, times
#   strata build --all --push --no-reuse                       (unsigned)
#   strata build --all --push --no-reuse --sign-key cosign.key  (signed)
# of the example stack (4 images, 2 platforms: 8 images, 4 indexes and 8
# SBOMs signed), each from a cold engine into a repository of its own, the
# two alternating $BENCH_ROUNDS times (default 2). Prints the medians of
# the whole run and of its push stages (where images are signed; indexes
# and SBOMs are signed in the run's end, which the whole run includes),
# the ratios, and the registry requests of each run (from the registry's
# access log: unlike times, not moved by other work on the machine).
#
# Usage: scripts/bench-sign.sh   (STRATA=path/to/strata, BENCH_ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench_strata
./scripts/make-base-image.sh >/dev/null

registry_bench
(cd "$work" && COSIGN_PASSWORD=bench "$STRATA" -q key generate --out cosign >/dev/null)

# The seconds of a run's push stages, summed over its images.
push_secs() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(s["duration_secs"] for i in r["images"] for s in i["stages"] if s["stage"]=="push"))' "$1"
}
# Registry requests so far: the access log's request lines.
requests() { grep -cE '"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/' "$work/registry.log" || true; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

measure() { # name, round, extra args...
  local name="$1" round="$2"; shift 2
  local repo="$work/$name-$round"
  example_repo "$repo" localhost:5000/strata-example "$host/$name-$round"
  cold_engine "$host/"
  local t0 t1 r0
  r0="$(requests)"
  t0="$(now)"
  (cd "$repo" && COSIGN_PASSWORD=bench "$STRATA" -q build --all --push --no-reuse "$@" --out "$work/out-$name-$round" >/dev/null)
  t1="$(now)"
  echo "$(echo "$t1 - $t0" | bc -l) $(push_secs "$work/out-$name-$round/artifacts/run.json") $(($(requests) - r0))"
}

rounds="${BENCH_ROUNDS:-2}"
plain_run=() plain_push=() signed_run=() signed_push=() plain_req=() signed_req=()
for round in $(seq "$rounds"); do
  read -r run push req < <(measure plain "$round")
  plain_run+=("$run") plain_push+=("$push") plain_req+=("$req")
  read -r run push req < <(measure signed "$round" --sign-key "$work/cosign.key")
  signed_run+=("$run") signed_push+=("$push") signed_req+=("$req")
done
pr="$(median "${plain_run[@]}")" pp="$(median "${plain_push[@]}")"
sr="$(median "${signed_run[@]}")" sp="$(median "${signed_push[@]}")"
pq="$(median "${plain_req[@]}")" sq="$(median "${signed_req[@]}")"
echo
echo "example stack, 4 images x 2 platforms, built, tested and pushed (cold engine each; medians of $rounds)"
printf '  %-22s %12s %12s %8s\n' "" "unsigned" "signed" "ratio"
printf '  %-22s %10.2f s %10.2f s %8.2f\n' "whole run" "$pr" "$sr" "$(echo "$sr / $pr" | bc -l)"
printf '  %-22s %10.2f s %10.2f s %8.2f\n' "push stages (sum)" "$pp" "$sp" "$(echo "$sp / $pp" | bc -l)"
printf '  %-22s %12d %12d %8.2f\n' "registry requests" "$pq" "$sq" "$(echo "$sq / $pq" | bc -l)"
printf '  signing added %.2f s to the run (%.2f s in the push stages)\n' "$(echo "$sr - $pr" | bc -l)" "$(echo "$sp - $pp" | bc -l)"
