#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build sipwake from this checkout, install it, and start it with the shipped
# configuration (standalone mode on loopback, SQLite under /var/lib/sipwake).
# Run as root on Debian 12. Under systemd it becomes the "sipwake" service;
# without systemd (a container) sipwaked is started in the background.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIPWAKE_TESTS=OFF
cmake --build build-release -j"$(nproc)"
cmake --install build-release --prefix /usr/local

install -d -m 0755 /etc/sipwake
if [ ! -e /etc/sipwake/sipwake.conf ]; then
	install -m 0640 conf/sipwake.conf /etc/sipwake/sipwake.conf
fi
/usr/local/sbin/sipwaked -c /etc/sipwake/sipwake.conf --check

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	id sipwake >/dev/null 2>&1 || useradd --system --home-dir /var/lib/sipwake \
		--shell /usr/sbin/nologin sipwake
	chgrp sipwake /etc/sipwake/sipwake.conf
	sed -e 's|/usr/sbin/sipwaked|/usr/local/sbin/sipwaked|' \
	    -e 's|/usr/bin/sipwakectl|/usr/local/bin/sipwakectl|' packaging/systemd/sipwake.service \
		> /etc/systemd/system/sipwake.service
	systemctl daemon-reload
	systemctl enable --now sipwake
	systemctl --no-pager status sipwake | head -n 5
	echo "add a user: sipwakectl account set sip:alice@localhost --password-stdin"
else
	install -d -m 0750 /var/lib/sipwake /run/sipwake
	if [ -f /run/sipwake/sipwaked.pid ] && kill -0 "$(cat /run/sipwake/sipwaked.pid)" 2>/dev/null; then
		echo "sipwaked already running (pid $(cat /run/sipwake/sipwaked.pid))"
		exit 0
	fi
	nohup /usr/local/sbin/sipwaked -c /etc/sipwake/sipwake.conf >>/var/log/sipwake.log 2>&1 &
	echo $! > /run/sipwake/sipwaked.pid
	sleep 1
	if ! kill -0 "$(cat /run/sipwake/sipwaked.pid)" 2>/dev/null; then
		echo "sipwaked failed to start; see /var/log/sipwake.log" >&2
		tail -n 20 /var/log/sipwake.log >&2
		exit 1
	fi
	echo "sipwaked running (pid $(cat /run/sipwake/sipwaked.pid)), log in /var/log/sipwake.log"
	echo "add a user: sipwakectl account set sip:alice@localhost --password-stdin"
fi
