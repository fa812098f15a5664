#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, as CI runs it: install the dependencies, build with
# -Werror and run every test (unit and integration, against real sipp,
# Kamailio and fake push providers), then build again with AddressSanitizer,
# LeakSanitizer and UBSan and run the same suite there; in between, every
# libFuzzer target runs briefly (tests/fuzz/run.sh).
#   tests/run.sh            all three
#   tests/run.sh --plain    the normal build only
#   tests/run.sh --asan     the sanitizer build only
#   tests/run.sh --fuzz     the fuzz targets only
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
if [ "$(id -u)" = 0 ]; then
	bash packaging/deps.sh --test
else
	echo "not root: assuming the dependencies are installed (packaging/deps.sh --test)"
fi
jobs=$(nproc)

run_suite() {
	local dir=$1; shift
	cmake -S . -B "$dir" -DSIPWAKE_WERROR=ON "$@"
	cmake --build "$dir" -j"$jobs"
	(cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 300)
}

if [ "$mode" = all ] || [ "$mode" = --plain ]; then
	echo "=== normal build ==="
	run_suite build-test
fi
if [ "$mode" = all ] || [ "$mode" = --fuzz ]; then
	echo "=== libFuzzer targets (clang, ASan/UBSan, ${SIPWAKE_FUZZ_SECONDS:-20} s each) ==="
	bash tests/fuzz/run.sh "${SIPWAKE_FUZZ_SECONDS:-20}"
fi
if [ "$mode" = all ] || [ "$mode" = --asan ]; then
	echo "=== AddressSanitizer/LeakSanitizer/UBSan build ==="
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
	run_suite build-asan -DSIPWAKE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
