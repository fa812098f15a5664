#!/bin/sh
# SPDX-License-Identifier: MIT
# Soak: mixed traffic (registrations, refreshes, unregisters, calls to awake and
# to sleeping push devices, MESSAGEs delivered and stored) through sipwaked in
# gateway mode in front of Kamailio, with the fake APNs and FCM; sipwaked's RSS
# and open descriptors over time.
#
#   bench/soak/run.sh                     # 10 minutes at 20 operations/s
#   bench/soak/run.sh --smoke             # 30 s: checks that it all runs
#   bench/soak/run.sh --duration 3600     # the 1-hour run, by hand
#   SIPWAKED=/path/to/sipwaked bench/soak/run.sh --rate 40 --devices 500
#
# Needs kamailio, kamcmd, openssl and Debian's /usr/bin/python3
# (python3-h2, python3-cryptography). Prints numbers only; asserts nothing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench_soak.py" "$@"
