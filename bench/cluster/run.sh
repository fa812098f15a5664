#!/bin/sh
# SPDX-License-Identifier: MIT
# Cluster benchmark (SPEC 9): one sipwaked on SQLite vs. one and two nodes on
# Redis -- REGISTER rate and p99, CPU per REGISTER, memory per binding and
# start-up at 100,000 bindings, takeover time after kill -9 of a node.
#
#   bench/cluster/run.sh                  # defaults, about 5 minutes
#   bench/cluster/run.sh --smoke          # tiny sizes, under a minute: checks that it all runs
#   bench/cluster/run.sh --rounds 3 --phones 1000 --bindings 200000
#   bench/cluster/run.sh --parts takeover --setups redis-1,redis-2
#   SIPWAKED=/path/to/sipwaked bench/cluster/run.sh
#
# Builds sipwaked first when there is no build (cmake, into build/), and runs
# under flock /tmp/sipwake-bench.lock so that two benchmarks never overlap.
# Needs sipp, kamailio, kamcmd, redis-server and Debian's /usr/bin/python3.
# Prints numbers only; asserts nothing about speed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
if [ -z "${SIPWAKED:-}" ] && [ ! -x "$src/build/sipwaked" ]; then
	cmake -S "$src" -B "$src/build" >/dev/null
	cmake --build "$src/build" -j2 --target sipwaked sipwakectl
fi
exec flock /tmp/sipwake-bench.lock /usr/bin/python3 "$here/bench_cluster.py" "$@"
