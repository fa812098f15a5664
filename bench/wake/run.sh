#!/bin/sh
# SPDX-License-Identifier: MIT
# Wake-up routing benchmark: push latency, release latency, held-call memory.
#
#   bench/wake/run.sh             # 1000 calls for latency, 10000 held INVITEs
#   bench/wake/run.sh --smoke     # 20 calls, 200 held: checks that it all runs
#   bench/wake/run.sh --calls 300 --held 2000 --rate 500
#   SIPWAKED=/path/to/sipwaked bench/wake/run.sh
#
# Needs openssl and Debian's /usr/bin/python3 (python3-h2, python3-cryptography).
# Prints numbers only; asserts nothing about speed. Not part of ctest.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench_wake.py" "$@"
