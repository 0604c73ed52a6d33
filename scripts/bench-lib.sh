# Sourced by the benchmarks (run from the repository's root): the strata
# to time, a copy of the example stack, and a cold engine.

# Sets $STRATA to an absolute path: the one given, else a release build.
bench_strata() {
  if [[ -z "${STRATA:-}" ]]; then
    cargo build --quiet --release -p strata-cli
    STRATA="$PWD/target/release/strata"
  fi
  STRATA="$(realpath "$STRATA")"
}

# example_repo DIR FROM TO: the example stack in a new git repository at
# DIR, with the static busybox of each platform, every FROM in its files
# made TO, committed once.
example_repo() {
  local dir="$1" from="$2" to="$3"
  mkdir -p "$dir"
  cp -r example/images "$dir/images"
  cp /bin/busybox "$dir/images/base-notebook/busybox-amd64"
  cp /usr/local/share/strata/busybox-arm64 "$dir/images/base-notebook/busybox-arm64"
  grep -rl "$from" "$dir/images" | xargs sed -i "s#$from#$to#g"
  git -C "$dir" init -q -b main
  git -C "$dir" add -A
  git -C "$dir" -c user.name=bench -c user.email=bench@example.invalid commit -qm "the example stack"
}

# cold_engine PATTERN: removes the containers and local images whose name
# holds PATTERN, and BuildKit's cache, as on a fresh runner.
cold_engine() {
  docker ps -a --format '{{.ID}} {{.Image}}' | grep -F "$1" | cut -d' ' -f1 | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "$1" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  docker builder prune -af >/dev/null 2>&1 || true
}

# A Docker config of its own under $work: no credentials of the user's.
isolated_docker_config() {
  export DOCKER_CONFIG="$work/docker-config"
  mkdir -p "$DOCKER_CONFIG"
  echo '{}' >"$DOCKER_CONFIG/config.json"
}

now() { date +%s.%N; }

# registry_bench: a work folder ($work), a docker-registry on loopback
# ($host) and a Docker config of its own, removed with the images pushed
# there when the script exits.
registry_bench() {
  . scripts/registry.sh
  work="$(mktemp -d)"
  trap 'docker images --format "{{.Repository}}:{{.Tag}}" | grep -F "${host:-none}/" | xargs -r docker rmi -f >/dev/null 2>&1 || true; stop_registry; rm -rf "$work"' EXIT
  start_registry
  isolated_docker_config
}
