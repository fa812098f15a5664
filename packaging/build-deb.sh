#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the sipwake .deb from this checkout without touching it: the tree
# (less build directories and .git) is copied to a temporary directory,
# packaging/debian becomes debian/ and the systemd unit joins it, then
# dpkg-buildpackage builds the binary package. Needs packaging/deps.sh
# --test (debhelper, dpkg-dev, fakeroot).
#   packaging/build-deb.sh [OUTDIR]     .deb written to OUTDIR (default .)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
work=$(mktemp -d /tmp/sipwake-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir "$work/sipwake"
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./debian -cf - . |
	tar -C "$work/sipwake" -xf -
cp -r "$src/packaging/debian" "$work/sipwake/debian"
cp "$src/packaging/systemd/sipwake.service" "$work/sipwake/debian/sipwake.service"
(
	cd "$work/sipwake"
	DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
		dpkg-buildpackage -b -uc -us
)
cp "$work"/*.deb "$out/"
ls "$out"/sipwake_*.deb
