#!/usr/bin/env bash
# Installs everything strata's tests and example stack need on a fresh Debian
# machine: the static busybox (base images are made locally, nothing is
# pulled), Debian's docker-registry and htpasswd (a real registry on loopback),
# pytest plus the docker Python package for the image tests, spdx-tools and
# jsonschema (the SBOMs' validators), debootstrap, headless Chromium (the
# report's browser test, scripts/browse-report.py), and QEMU's
# user-mode emulators registered with binfmt_misc for builds of other
# platforms (linux/arm64 on an amd64 machine), with arm64's static busybox.
set -euo pipefail

need_apt=()
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v man >/dev/null 2>&1 || need_apt+=(man-db)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
dpkg -s qemu-user-static >/dev/null 2>&1 || need_apt+=(qemu-user-static)
dpkg -s binfmt-support >/dev/null 2>&1 || need_apt+=(binfmt-support)
if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then need_apt+=(docker.io); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# binfmt_misc must be mounted for QEMU's handlers to be registered (it is
# not inside some containers); then the handlers are (re)enabled.
if [ -d /proc/sys/fs/binfmt_misc ] && [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
    echo "setup: cannot mount binfmt_misc; builds for other platforms will fail" >&2
fi
if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable >/dev/null 2>&1 || true
fi

# The static busybox of arm64, for stacks built for linux/arm64 (the
# example stack's root and the multi-platform tests copy it):
# /usr/local/share/strata/busybox-arm64 (amd64's is /bin/busybox).
ARM64_BUSYBOX=/usr/local/share/strata/busybox-arm64
if [ ! -x "$ARM64_BUSYBOX" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -qq busybox-static:arm64 >/dev/null 2>&1 && dpkg-deb -x busybox-static_*_arm64.deb x)
  mkdir -p "$(dirname "$ARM64_BUSYBOX")"
  install -m 0755 "$tmp/x/bin/busybox" "$ARM64_BUSYBOX"
  rm -rf "$tmp"
fi

if ! python3 -c 'import pytest, docker' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check pytest docker
fi
# Validators of the SBOMs strata writes, written by others: SPDX's
# pyspdxtools, and jsonschema for CycloneDX's schema.
if ! command -v pyspdxtools >/dev/null 2>&1 || ! python3 -c 'import jsonschema, referencing' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check spdx-tools jsonschema
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

# skopeo 1.18 from Debian 13 in its own folder, the signing tests' verifier
# (Debian 12's cannot verify cosign signatures).
"$(dirname "$0")/skopeo-trixie.sh" >/dev/null
