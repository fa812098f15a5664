#!/bin/sh
# SPDX-License-Identifier: MIT
# Keep-alive at scale (SPEC 4.6): N push bindings that sipwake keeps
# registered at a Kamailio registrar capping registrations at CAP seconds.
#
#   bench/keepalive/run.sh                  # 100000 bindings, 60 s cap
#   bench/keepalive/run.sh --smoke          # 2000 bindings, 20 s cap: checks that it all runs
#   bench/keepalive/run.sh -n 20000 --cap 30 --measure 90
#
# Needs kamailio, kamcmd and Debian's /usr/bin/python3. Prints numbers only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench_keepalive.py" "$@"
