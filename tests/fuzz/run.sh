#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the libFuzzer targets with clang (ASan + UBSan) and run each one over
# its seed corpus for a bounded time. A crash, a leak or a sanitizer report
# fails the run and leaves the reproducer in build-fuzz/findings/<target>/.
#   tests/fuzz/run.sh              every target, 20 s each (what CI runs)
#   tests/fuzz/run.sh 600          every target, 10 min each (by hand)
#   tests/fuzz/run.sh 600 forward  one target
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
only=${2:-}
dir=build-fuzz
CC=clang cmake -S . -B "$dir" -DSIPWAKE_FUZZ=ON -DSIPWAKE_TESTS=OFF -DSIPWAKE_WERROR=ON \
	-DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Library leaks we cannot fix (each one explained in the file).
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
failed=0
ran=0
for bin in "$dir"/tests/fuzz/fuzz_*; do
	name=$(basename "$bin")
	name=${name#fuzz_}
	[ -z "$only" ] || [ "$only" = "$name" ] || continue
	seeds=tests/fuzz/corpus/$name
	work=$dir/corpus/$name
	findings=$dir/findings/$name
	mkdir -p "$work" "$findings"
	log=$dir/fuzz-$name.log
	dict=()
	[ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
	if "$bin" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$findings/" "$work" "$seeds" >"$log" 2>&1; then
		echo "fuzz $name: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') executions in ${secs}s"
	else
		echo "fuzz $name: FAILED (see $log, reproducer in $findings/)"
		tail -40 "$log"
		failed=$((failed + 1))
	fi
	ran=$((ran + 1))
done
echo "fuzz targets clean: $((ran - failed)) of $ran"
[ "$failed" -eq 0 ] && [ "$ran" -gt 0 ]
