#!/usr/bin/env bash
# The daily loop of a team (not a test): prints each figure beside its
# baseline, both measured in this run.
#
# The stack: the example's layout (base-notebook, datascience-notebook,
# rstudio-notebook, scipy-ml-notebook) on a Debian root with Python
# (debootstrap --variant=minbase, imported once and kept), each image adding
# its own data (the root 200 MB, as a real root's push weighs), three info
# commands each, and pytest tests whose conftest publishes port 8888 for
# every test container, as the seed's real conftest does. Pushed to a
# docker-registry on 127.0.0.1. Every timed run starts from a cleaned
# engine (the stack's images and BuildKit's cache removed), as in CI, and
# does work of its own (a fresh NONCE build arg), so no run reuses another's.
#
#  1. one-image change (scipy-ml-notebook, a leaf) after a pushed build:
#     `strata build --push` against the same by hand with plain tools:
#     `docker build` with BuildKit (the docker CLI has no buildx here, so
#     crates/strata-engine/examples/buildkit_build.rs: one API call, nothing
#     else), pytest with the conftest on the same test folders (the image's
#     and its ancestors', as strata runs them), `docker push`, one `docker
#     run` for the info commands. Goal: <= 1.2.
#  2. full build with default flags against the same by hand, one image at a
#     time. Goal: <= 0.6. Beside it, the same strata run with no push at
#     all: the floor set by the stack's critical path (root, then
#     datascience, then scipy-ml, each built and tested in turn).
#  3. planning on a 300-image repository (crates/strata-git/examples/
#     synth_repo.rs) against git's own commands for the same work: `git diff
#     --name-only BASE HEAD` plus `git status --porcelain -- images`.
#     Goal: <= 1.0.
#  4. PORT_RUNS (default 20) full runs in a row with default flags: every one
#     must pass although every test publishes port 8888.
#
# Usage: scripts/bench-daily.sh   RUNS=3 repetitions of 1 and 2 (medians);
#        PORT_RUNS=20; STRATA=path/to/strata to time another build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RUNS="${RUNS:-3}"
PORT_RUNS="${PORT_RUNS:-20}"
. scripts/bench-lib.sh
. scripts/registry.sh
bench_strata
cargo build --quiet --release --locked -p strata-engine --example buildkit_build
BUILDKIT_BUILD="$ROOT/target/release/examples/buildkit_build"
for tool in hyperfine debootstrap; do
  command -v "$tool" >/dev/null || apt-get install -y "$tool" >/dev/null
done
python3 -c 'import docker, pytest' 2>/dev/null || {
  echo "bench-daily: pytest and docker (the Python library) are needed: ./scripts/setup.sh" >&2
  exit 2
}

work="$(mktemp -d)"
cleanup() {
  cold_engine "${host:-none}/"
  stop_registry
  rm -rf "$work"
}
trap cleanup EXIT
start_registry
isolated_docker_config

# The Debian root with Python, made once (debootstrap downloads ~40 MB).
DEBIAN=strata-bench/debian-python:bookworm
if ! docker image inspect "$DEBIAN" >/dev/null 2>&1; then
  rootfs=/var/cache/strata-bench/rootfs
  if [[ ! -x "$rootfs/usr/bin/python3" ]]; then
    echo "== making a Debian root with Python (once)" >&2
    mkdir -p "$(dirname "$rootfs")"
    debootstrap --variant=minbase --include=python3 bookworm "$rootfs" http://deb.debian.org/debian >&2
  fi
  tar -C "$rootfs" -c . | docker import - "$DEBIAN" >/dev/null
fi

# ---------------------------------------------------------------- the stack
repo="$work/repo"
mkdir -p "$repo/images"
cd "$repo"
IMAGES=(base-notebook datascience-notebook rstudio-notebook scipy-ml-notebook)
declare -A PARENT=([datascience-notebook]=base-notebook [rstudio-notebook]=base-notebook [scipy-ml-notebook]=datascience-notebook)
declare -A MB=([base-notebook]=200 [datascience-notebook]=40 [rstudio-notebook]=30 [scipy-ml-notebook]=20)
write_stack() { # NAMESPACE: the stack's files, its images under $host/NAMESPACE
  local ns="$1" img
  {
    echo "root: base-notebook"
    echo "images:"
    for img in "${IMAGES[@]}"; do
      echo "  $img:"
      echo "    image_name: $host/$ns/$img"
      [[ -n "${PARENT[$img]:-}" ]] && echo "    depend_on: ${PARENT[$img]}"
      echo "    info_cmds: [PYTHON, SIZE, TOOLS]"
    done
    echo "tag:"
    echo "  prefix: \"2026.12\""
    echo "all_info_cmds:"
    echo "  PYTHON: {description: Python, command: python3 --version}"
    echo "  SIZE: {description: Data, command: du -sk /opt/stack}"
    echo "  TOOLS: {description: Tools, command: cat /opt/stack/tools.txt}"
  } >images/spec.yml
  for img in "${IMAGES[@]}"; do
    mkdir -p "images/$img/test"
    {
      if [[ -n "${PARENT[$img]:-}" ]]; then
        echo "ARG BASE_TAG"
        echo "FROM $host/$ns/${PARENT[$img]}:\${BASE_TAG}"
      else
        echo "FROM $DEBIAN"
      fi
      echo "ARG NONCE=none"
      echo "COPY change.txt /opt/stack/$img.change"
      echo "RUN mkdir -p /opt/stack && echo \"\$NONCE $img\" >> /opt/stack/tools.txt && head -c ${MB[$img]}M /dev/urandom > /opt/stack/$img.data"
    } >"images/$img/Dockerfile"
    echo "first" >"images/$img/change.txt"
    cat >"images/$img/test/test_${img//-/_}.py" <<PY
def test_python_runs(container):
    assert "Python 3" in container.run_and_check("python3 --version")


def test_own_data(container):
    container.run_and_check("test -s /opt/stack/$img.data")
PY
  done
  # The seed's conftest: every test container publishes 8888.
  cat >images/conftest.py <<'PY'
import os

import docker
import pytest


class TrackedContainer:
    def __init__(self, client, image):
        self.client = client
        self.image = image

    def run_and_check(self, command):
        c = self.client.containers.run(
            self.image, ["sh", "-c", command], detach=True,
            ports={"8888/tcp": 8888}, labels={"io.strata.test": "1"},
        )
        try:
            code = c.wait(timeout=120)["StatusCode"]
            out = c.logs().decode("utf-8", "replace")
            assert code == 0, f"{command!r} exited {code}:\n{out}"
            return out
        finally:
            c.remove(force=True)


@pytest.fixture(scope="session")
def docker_client():
    return docker.from_env()


@pytest.fixture
def container(docker_client):
    return TrackedContainer(docker_client, os.environ["TEST_IMAGE"])
PY
}
write_stack bench-daily
git init -q -b main
commit() { git add -A && git -c user.name=bench -c user.email=bench@example.invalid commit -qm "$1"; }
commit "the stack"

# The same stack by hand: the same Dockerfiles under their own names.
hand="$work/hand"
mkdir -p "$hand"
cp -r images "$hand/images"
grep -rl "$host/bench-daily/" "$hand/images" | xargs sed -i "s#$host/bench-daily/#$host/bench-hand/#g"

by_hand() { # TAG NONCE IMAGE...: build, test, push, info of each, one at a time
  local tag="$1" nonce="$2" img ref
  shift 2
  for img in "$@"; do
    ref="$host/bench-hand/$img:$tag"
    "$BUILDKIT_BUILD" "$hand/images/$img" "$ref" BASE_TAG="$tag" NONCE="$nonce"
    # The folders strata runs: the image's tests and its ancestors'.
    local folders=() up="$img"
    while [[ -n "$up" ]]; do
      folders+=("$up/test")
      up="${PARENT[$up]:-}"
    done
    (cd "$hand/images" && TEST_IMAGE="$ref" python3 -m pytest -q -p no:cacheprovider "${folders[@]}" >/dev/null)
    docker push -q "$ref" >/dev/null
    docker run --rm "$ref" sh -c 'python3 --version; du -sk /opt/stack; cat /opt/stack/tools.txt' >/dev/null
  done
}
strata_build() { # OUT ARGS...: strata build --push, quiet, must pass
  local out="$1"
  shift
  "$STRATA" -q build --push --out "$work/$out" "$@" >/dev/null
}
cold() { cold_engine "$host/"; }
timed() { # VAR COMMAND...: runs it from a cold engine, its seconds in VAR
  local var="$1" t0
  shift
  cold
  t0="$(now)"
  "$@"
  printf -v "$var" '%s' "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ------------------------------------------------- 2. full builds, 1. one image
echo "== full builds and one-image changes, $RUNS each (cold engine every time)" >&2
full_strata=() full_hand=() full_nopush=() one_strata=() one_hand=()
for rep in $(seq "$RUNS"); do
  nonce="full-$$-$rep-$RANDOM"
  tag="hand-$rep"
  timed s strata_build "full-$rep" --all --build-arg NONCE="s-$nonce"
  timed h by_hand "$tag" "h-$nonce" "${IMAGES[@]}"
  # The floor of the stack's critical path: the same run with no push.
  timed n "$STRATA" -q build --all --offline --build-arg NONCE="n-$nonce" --out "$work/nopush-$rep"
  full_strata+=("$s") full_hand+=("$h") full_nopush+=("$n")
  echo "   full $rep: strata ${s}s, by hand ${h}s, strata with no push ${n}s" >&2

  # The leaf changes: strata builds only it, on its pushed parent.
  echo "$rep-$RANDOM" >images/scipy-ml-notebook/change.txt
  cp images/scipy-ml-notebook/change.txt "$hand/images/scipy-ml-notebook/change.txt"
  commit "scipy-ml: change $rep"
  timed s strata_build "one-$rep"
  built="$(python3 -c 'import json,sys; print(",".join(i["image"] for i in json.load(open(sys.argv[1]))["images"] if i["outcome"] == "built"))' "$work/one-$rep/artifacts/run.json")"
  [[ "$built" == scipy-ml-notebook ]] || { echo "bench-daily: the one-image run built $built" >&2; exit 1; }
  timed h by_hand "$tag" "h1-$nonce" scipy-ml-notebook
  one_strata+=("$s") one_hand+=("$h")
  echo "   one image $rep: strata ${s}s, by hand ${h}s" >&2
done

# ------------------------------------------------------------ 3. planning
echo "== planning on a 300-image repository" >&2
cargo build --quiet --release --locked -p strata-git --example synth_repo --manifest-path "$ROOT/Cargo.toml"
synth="$work/synth"
synth_out="$("$ROOT/target/release/examples/synth_repo" "$synth")"
BASE="$(sed -n 's/^BASE=//p' <<<"$synth_out")"
plan_json="$work/plan.json"
# A checkout as users have it: git status has refreshed the index once (a
# fresh one holds racily clean entries, which every scan then hashes).
git -C "$synth" status >/dev/null
hyperfine --warmup 3 --min-runs 20 -N --export-json "$plan_json" \
  -n strata "$STRATA -C $synth plan --base $BASE --offline --no-reuse --format json" \
  -n git-diff "git -C $synth diff --name-only $BASE HEAD" \
  -n git-status "git -C $synth status --porcelain -- images" >/dev/null
read -r PLAN_STRATA PLAN_GIT < <(python3 - "$plan_json" <<'PY'
import json, sys
m = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
print(f'{m["strata"] * 1000:.1f} {(m["git-diff"] + m["git-status"]) * 1000:.1f}')
PY
)

# ------------------------------------------------------- 4. port 8888 runs
echo "== $PORT_RUNS full runs with default flags, every test publishing port 8888" >&2
passed=0
for i in $(seq "$PORT_RUNS"); do
  if "$STRATA" -q build --all --build-arg NONCE="port-$$-$i" --out "$work/port-$i" >/dev/null 2>"$work/port-$i.err"; then
    passed=$((passed + 1))
  else
    echo "   run $i failed:" >&2
    tail -n 5 "$work/port-$i.err" >&2
  fi
done

FULL_S="$(median "${full_strata[@]}")" FULL_H="$(median "${full_hand[@]}")" FULL_N="$(median "${full_nopush[@]}")"
ONE_S="$(median "${one_strata[@]}")" ONE_H="$(median "${one_hand[@]}")"
echo
echo "the daily loop ($(nproc) cores, Docker $(docker version --format '{{.Server.Version}}'), medians of $RUNS)"
row() { printf '| %-52s | %-10s | %-7s |\n' "$1" "$2" "$3"; }
row figure value goal
row "---" "---" "---"
row "one-image change, strata build --push" "${ONE_S}s" ""
row "one-image change, by hand" "${ONE_H}s" ""
row "ratio" "$(ratio "$ONE_S" "$ONE_H")" "<= 1.2"
row "full build, strata build --push --all" "${FULL_S}s" ""
row "full build, by hand one image at a time" "${FULL_H}s" ""
row "ratio" "$(ratio "$FULL_S" "$FULL_H")" "<= 0.6"
row "full build with no push (strata build --all --offline)" "${FULL_N}s" ""
row "its ratio to by hand (the critical path's floor)" "$(ratio "$FULL_N" "$FULL_H")" ""
row "plan, 300 images (strata plan --offline --no-reuse)" "${PLAN_STRATA} ms" ""
row "git diff --name-only + git status -- images" "${PLAN_GIT} ms" ""
row "ratio" "$(ratio "$PLAN_STRATA" "$PLAN_GIT")" "<= 1.0"
row "full runs publishing port 8888 that passed" "$passed/$PORT_RUNS" "all"
[[ $passed == "$PORT_RUNS" ]]
