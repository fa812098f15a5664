#!/bin/sh
# SPDX-License-Identifier: MIT
# Run the integration tests without CTest, one after the other, and print a
# summary. Arguments: test names or files (default: every test_*.py here).
#   tests/integration/run.sh
#   SIPWAKED=build/sipwaked tests/integration/run.sh test_gateway_call
# Each test is bounded by its own waits; `timeout` is a last resort.
set -u
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if [ $# -eq 0 ]; then
	set -- "$here"/test_*.py
fi
pass=0; fail=0; failed=""
for t in "$@"; do
	case "$t" in
	*/*) f=$t ;;
	*.py) f=$here/$t ;;
	*) f=$here/$t.py ;;
	esac
	name=$(basename "$f" .py)
	timeout 600 "$py" "$f"
	rc=$?
	if [ $rc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $name($rc)"; fi
done
echo "integration: $pass passed, $fail failed${failed:+:$failed}"
[ $fail -eq 0 ]
