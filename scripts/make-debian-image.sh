#!/usr/bin/env bash
# Makes the local Debian image the SBOM tests read: Debian 12 (bookworm)
# minbase with Python and pip, from debootstrap (nothing is pulled from a
# container registry), imported as strata-test/debian-python:bookworm. The
# root file system is made once and kept in /var/cache/strata-test/.
set -euo pipefail
IMAGE=strata-test/debian-python:bookworm
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
}
rootfs=/var/cache/strata-test/debian-python
if [[ ! -x "$rootfs/usr/bin/pip3" ]]; then
  rm -rf "$rootfs"
  mkdir -p "$(dirname "$rootfs")"
  debootstrap --variant=minbase --include=python3,python3-pip bookworm "$rootfs" \
    http://deb.debian.org/debian >/dev/null
  # A smaller image: no downloaded packages or lists.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
fi
tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "$IMAGE"
