#!/usr/bin/env bash
# Benchmark of `strata plan` on a large synthetic stack (not a test).
#
#   scripts/bench-plan.sh [DIR] [-- synth_repo flags, e.g. --images 300 --files 40000]
#
# Builds the release binary and the synth_repo example, generates the
# repository in DIR (default: a fresh temporary directory), then times with
# hyperfine, in one run each, as whole processes:
#   1. strata plan --base BASE --offline --format json   (head: the working
#      tree, HEAD's commit plus its uncommitted changes, so git status too)
#      against   git diff --name-only BASE HEAD   (git's own diff of the commits)
#      and       git diff --name-only BASE        (git's own diff of BASE and
#                the working tree: the same stat of every tracked file)
#   2. the same with --head HEAD (a commit: no working-tree scan)
#   3. strata plan --all --offline --format json
# and prints the ratio strata/git of the mean times.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

dir=""
if [[ $# -gt 0 && "$1" != "--" ]]; then
  dir="$1"
  shift
fi
[[ "${1:-}" == "--" ]] && shift
synth_flags=("$@")

if ! command -v hyperfine >/dev/null 2>&1; then
  echo "hyperfine is missing; installing it" >&2
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y hyperfine; else sudo apt-get install -y hyperfine; fi
fi

echo "== building (release)" >&2
cargo build --release -p strata-cli --bin strata >&2
cargo build --release -p strata-git --example synth_repo >&2
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
strata="$target/release/strata"

cleanup=""
if [[ -z "$dir" ]]; then
  tmp="$(mktemp -d)"
  cleanup="$tmp"
  dir="$tmp/synth"
fi
trap '[[ -n "$cleanup" ]] && rm -rf "$cleanup"' EXIT

echo "== generating $dir" >&2
out="$("$target/release/examples/synth_repo" "$dir" "${synth_flags[@]}")"
BASE="$(sed -n 's/^BASE=//p' <<<"$out")"
HEAD="$(sed -n 's/^HEAD=//p' <<<"$out")"
echo "BASE=$BASE HEAD=$HEAD" >&2

# Sanity: both commands work and agree on what changed.
"$strata" -C "$dir" plan --base "$BASE" --head "$HEAD" --offline --format json >/dev/null
rebuilds="$("$strata" -C "$dir" plan --base "$BASE" --head "$HEAD" --offline --format json | grep -c '"rebuild": true' || true)"
files="$(git -C "$dir" diff --name-only "$BASE" "$HEAD" | wc -l)"
echo "git diff --name-only: $files paths; strata plan: $rebuilds rebuilds" >&2

json="$(mktemp)"
json_all="$(mktemp)"
cleanup="$cleanup $json $json_all"
trap 'rm -rf $cleanup' EXIT

hyperfine --warmup 3 --min-runs 20 -N --export-json "$json" \
  -n strata-worktree "$strata -C $dir plan --base $BASE --offline --format json" \
  -n strata "$strata -C $dir plan --base $BASE --head $HEAD --offline --format json" \
  -n git "git -C $dir diff --name-only $BASE $HEAD" \
  -n git-worktree "git -C $dir diff --name-only $BASE"

hyperfine --warmup 3 --min-runs 20 -N --export-json "$json_all" \
  -n strata-all "$strata -C $dir plan --all --offline --format json" \
  -n git "git -C $dir diff --name-only $BASE $HEAD"

python3 - "$json" "$json_all" <<'PY'
import json, sys
def means(path):
    return {r["command"]: r["mean"] for r in json.load(open(path))["results"]}
a = means(sys.argv[1]); b = means(sys.argv[2])
print(f"strata plan --base (working tree): {a['strata-worktree']*1000:.2f} ms, git diff --name-only: {a['git']*1000:.2f} ms, ratio strata/git = {a['strata-worktree']/a['git']:.2f}")
print(f"strata plan --base (working tree): {a['strata-worktree']*1000:.2f} ms, git diff --name-only BASE (working tree): {a['git-worktree']*1000:.2f} ms, ratio = {a['strata-worktree']/a['git-worktree']:.2f}")
print(f"strata plan --base/--head:         {a['strata']*1000:.2f} ms, git diff --name-only: {a['git']*1000:.2f} ms, ratio strata/git = {a['strata']/a['git']:.2f}")
print(f"strata plan --all:                 {b['strata-all']*1000:.2f} ms, git diff --name-only: {b['git']*1000:.2f} ms, ratio strata/git = {b['strata-all']/b['git']:.2f}")
PY
