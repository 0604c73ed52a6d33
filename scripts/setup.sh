#!/usr/bin/env bash
# Installs everything strata's tests and example stack need on a fresh Debian
# machine: the static busybox (base images are made locally, nothing is
# pulled), Debian's docker-registry and htpasswd (a real registry on loopback),
# and pytest plus the docker Python package for the image tests.
set -euo pipefail

need_apt=()
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
command -v git >/dev/null 2>&1 || need_apt+=(git)
if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then need_apt+=(docker.io); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! python3 -c 'import pytest, docker' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check pytest docker
fi

# An engine that is not running yet: start Debian's dockerd with settings that
# need no privileges the machine may lack.
if ! docker info >/dev/null 2>&1; then
  mkdir -p /var/lib/strata-dockerd
  nohup dockerd --iptables=false --bridge=none --storage-driver=vfs \
    --data-root /var/lib/strata-dockerd >/var/log/strata-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: the Docker engine did not start; see /var/log/strata-dockerd.log" >&2; exit 3; }
fi
