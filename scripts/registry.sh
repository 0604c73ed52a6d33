# Sourced by the benchmarks: starts Debian's docker-registry on a free
# loopback port, storing under "$work/storage" and logging to
# "$work/registry.log" (with its access log, one line per request).
# Sets $host (127.0.0.1:<port>) and $registry_pid; stop_registry stops it.
start_registry() {
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  host="127.0.0.1:$port"
  mkdir -p "$work/storage"
  cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: $host
YML
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 100); do
    curl -fsS "http://$host/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  curl -fsS "http://$host/v2/" >/dev/null
}

# Stops the registry start_registry started, if it did.
stop_registry() {
  if [[ -n "${registry_pid:-}" ]]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
}
