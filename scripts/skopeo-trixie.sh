#!/usr/bin/env bash
# skopeo from Debian 13 (trixie), whose containers/image verifies cosign
# signatures (Debian 12's has sigstore patched out), for the signing tests:
# a verifier no one here wrote. It is fetched with a private apt
# configuration (its own sources list, state and cache under
# /opt/strata-test/trixie-apt) and unpacked with the shared libraries it
# needs into /opt/strata-test/skopeo, run through that folder's own loader
# by /opt/strata-test/bin/skopeo. The system's apt state, sources and
# libraries are not touched. Idempotent; run as root (scripts/setup.sh).
set -euo pipefail

ROOT=/opt/strata-test
APT_DIR="$ROOT/trixie-apt"
DEST="$ROOT/skopeo"
WRAPPER="$ROOT/bin/skopeo"

if [ -x "$WRAPPER" ] && "$WRAPPER" --version 2>/dev/null | grep -q 'version 1\.\(1[89]\|[2-9][0-9]\)'; then
  exit 0
fi

mkdir -p "$APT_DIR/state/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/debs" "$ROOT/bin"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
  >"$APT_DIR/sources.list"
: >"$APT_DIR/state/status"
apt_opts=(
  -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "Dir::State=$APT_DIR/state"
  -o "Dir::State::status=$APT_DIR/state/status"
  -o "Dir::Cache=$APT_DIR/cache"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures::=amd64"
  -o "Debug::NoLocking=1"
)
apt-get "${apt_opts[@]}" update -qq

# skopeo and the shared libraries it needs: the lib* packages among its
# Depends and Pre-Depends, and theirs, recursively (its other dependencies,
# configuration and gpg, are not needed to copy and verify).
lib_deps() {
  apt-cache "${apt_opts[@]}" depends --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "$1" |
    sed -n 's/^ *\(Pre\)\{0,1\}Depends: \(lib[^ <>:]*\).*/\2/p'
}
packages=(skopeo)
queue=(skopeo)
while [ ${#queue[@]} -gt 0 ]; do
  next=()
  for p in "${queue[@]}"; do
    while read -r dep; do
      case " ${packages[*]} " in *" $dep "*) continue ;; esac
      packages+=("$dep")
      next+=("$dep")
    done < <(lib_deps "$p")
  done
  queue=("${next[@]+"${next[@]}"}")
done
rm -f "$APT_DIR/debs/"*.deb
# As root, apt's download sandbox user cannot write here: download as root.
(cd "$APT_DIR/debs" && apt-get -o APT::Sandbox::User=root "${apt_opts[@]}" download -qq "${packages[@]}" >/dev/null)
rm -rf "$DEST"
mkdir -p "$DEST"
for deb in "$APT_DIR/debs/"*.deb; do dpkg-deb -x "$deb" "$DEST"; done

loader="$(find "$DEST" -name 'ld-linux-x86-64.so.2' | head -1)"
[ -n "$loader" ] || { echo "skopeo-trixie: no loader in $DEST" >&2; exit 3; }
libs="$DEST/usr/lib/x86_64-linux-gnu:$DEST/lib/x86_64-linux-gnu"
if "$loader" --list --library-path "$libs" "$DEST/usr/bin/skopeo" | grep 'not found' >&2; then
  echo "skopeo-trixie: a library skopeo needs is not among ${packages[*]}" >&2
  exit 3
fi
cat >"$WRAPPER" <<WRAP
#!/bin/sh
# skopeo from Debian 13, with its own libraries (scripts/skopeo-trixie.sh).
exec "$loader" --library-path "$libs" "$DEST/usr/bin/skopeo" "\$@"
WRAP
chmod 0755 "$WRAPPER"
"$WRAPPER" --version
