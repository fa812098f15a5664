#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what sipwake needs from Debian 12's packages.
#   packaging/deps.sh          build and run dependencies
#   packaging/deps.sh --test   plus everything the test suite and benchmarks use
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libsofia-sip-ua-dev libcurl4-openssl-dev libnghttp2-dev libssl-dev
      libsqlite3-dev libconfig-dev libjansson-dev libmicrohttpd-dev libhiredis-dev ca-certificates)
if [ "${1:-}" = "--test" ]; then
	pkgs+=(sip-tester kamailio linphone-cli python3 python3-h2
	       python3-cryptography nghttp2-client nghttp2-server redis-server sqlite3 openssl procps iproute2 libcmocka-dev
	       systemd man-db groff-base debhelper dpkg-dev fakeroot
	       clang libclang-rt-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
