#!/bin/sh
# SPDX-License-Identifier: MIT
# CPU per relayed call: sipp caller -> Kamailio R -> sipwaked (gateway) -> sipp callee
# vs. the same through a Kamailio proxy in sipwaked's place, same machine, same run.
#
#   bench/calls/run.sh                   # 3000 calls per path at 100 and 300 calls/s, UDP
#   bench/calls/run.sh --smoke           # 40 calls at 20/s: checks that it all runs
#   bench/calls/run.sh --transport tcp -n 2000 --rates 50,200 --hold-ms 500
#   SIPWAKED=/path/to/sipwaked bench/calls/run.sh
#
# Needs sipp, kamailio, kamcmd and Debian's /usr/bin/python3.
# Prints numbers only; asserts nothing about speed. Not part of ctest.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench_calls.py" "$@"
