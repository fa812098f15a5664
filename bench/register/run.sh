#!/bin/sh
# SPDX-License-Identifier: MIT
# REGISTER throughput/latency: sipp -> sipwaked -> Kamailio vs. sipp -> Kamailio
# proxy -> Kamailio (and sipp -> Kamailio), same machine, same run.
#
#   bench/register/run.sh                 # 20000 REGISTERs per path at 2000,5000,10000,20000/s
#   bench/register/run.sh --smoke         # 200 REGISTERs at 200/s: checks that it all runs
#   bench/register/run.sh -n 5000 --rates 1000,3000 --transport tcp
#   SIPWAKED=/path/to/sipwaked bench/register/run.sh
#
# Needs sipp, kamailio, kamcmd, openssl and Debian's /usr/bin/python3.
# Prints numbers only; asserts nothing about speed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench_register.py" "$@"
