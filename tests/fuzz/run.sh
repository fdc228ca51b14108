#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets in their own clang build directory and runs each for a bounded
# time; see README.md "Fuzzing".
#   tests/fuzz/run.sh [SECONDS [TARGET...]]
# SECONDS per target (default 60); TARGETs among: request reply_read jwt login_response
# fields config (default all). Prints the executions each target reached; exits non-zero if
# any target crashed, leaked, hung or broke an invariant (the input that did it is kept, see
# below).
# Environment:
#   FUZZ_BUILD   build directory (default build-fuzz in the source tree)
#   FUZZ_ARGS    more libFuzzer options for every target, e.g. "-seed=1 -only_ascii=1"
# New inputs found go to $FUZZ_BUILD/corpus/TARGET (tests/fuzz/corpus/TARGET, the seeds, is only
# read); crash, leak and timeout inputs to $FUZZ_BUILD/artifacts/TARGET/.
set -eu

cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-request reply_read jwt login_response fields config}

case $SECONDS_EACH in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS [TARGET...]]" >&2
	exit 2
	;;
esac

# Longest input per target: a bit beyond what each format meets in practice.
max_len() {
	case $1 in
	request) echo 4096 ;;
	reply_read) echo 4096 ;;
	jwt) echo 4096 ;;
	login_response) echo 8192 ;;
	fields) echo 2048 ;;
	config) echo 4096 ;;
	*)
		echo "run.sh: unknown target $1" >&2
		exit 2
		;;
	esac
}
for t in $TARGETS; do max_len "$t" >/dev/null; done

# Tokens of each input format, for libFuzzer's mutations.
dict() {
	case $1 in
	request | reply_read | jwt | login_response) echo "$ROOT/tests/fuzz/json.dict" ;;
	*) echo "$ROOT/tests/fuzz/$1.dict" ;;
	esac
}

# The targets link -fsanitize=fuzzer themselves; fuzzer-no-link gives every library they test
# the coverage instrumentation libFuzzer steers by.
options="-Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false
	-Dc_args=-fsanitize=fuzzer-no-link -Dbuildtype=debugoptimized"
mkdir -p "$BUILD"
if [ -f "$BUILD/build.ninja" ]; then
	# shellcheck disable=SC2086
	meson setup --reconfigure "$BUILD" $options >"$BUILD/setup.log" 2>&1 ||
		{ cat "$BUILD/setup.log" >&2; exit 1; }
else
	# shellcheck disable=SC2086
	CC=clang meson setup "$BUILD" $options >"$BUILD/setup.log" 2>&1 ||
		{ cat "$BUILD/setup.log" >&2; exit 1; }
fi
exes=""
for t in $TARGETS; do exes="$exes tests/fuzz/fuzz_$t"; done
# shellcheck disable=SC2086
ninja -C "$BUILD" $exes >"$BUILD/build.log" 2>&1 || { cat "$BUILD/build.log" >&2; exit 1; }

# A UBSan finding is a crash, not a line in the log; leaks are checked after every input.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

failed=0
summary=""
# One JSON object per target, in the form of meson's testlog.json, for the Quick start's count.
results=$BUILD/fuzz-results.json
: >"$results"
for t in $TARGETS; do
	exe=$BUILD/tests/fuzz/fuzz_$t
	if [ ! -x "$exe" ]; then
		echo "run.sh: $exe was not built (tests/meson.build needs cmocka: libcmocka-dev)" >&2
		exit 1
	fi
	corpus=$BUILD/corpus/$t
	artifacts=$BUILD/artifacts/$t
	log=$BUILD/fuzz-$t.log
	mkdir -p "$corpus" "$artifacts"

	echo "== fuzz_$t: ${SECONDS_EACH}s, -max_len=$(max_len "$t"), log $log"
	# Only inputs this run saved count: older ones may be from a bug fixed since.
	touch "$BUILD/.run-start"
	rc=0
	# shellcheck disable=SC2086
	"$exe" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout=10 \
		-dict="$(dict "$t")" -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
		"$corpus" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?

	# "Done N runs in S second(s)" ends a clean run; a crash ends with the last "#N ..."
	# status line instead. stat::number_of_executed_units is printed by both.
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
	[ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	cov=$(sed -n 's/^#[0-9]*.* cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
	crashes=$(find "$artifacts" -type f -newer "$BUILD/.run-start" | wc -l)
	if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
		result="FAILED (exit $rc; inputs in $artifacts)"
		failed=1
		printf '{"name": "fuzz/%s", "result": "FAIL"}\n' "$t" >>"$results"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*invariant failed)' "$log" |
			head -n 5 >&2 || true
	else
		result=ok
		printf '{"name": "fuzz/%s", "result": "OK"}\n' "$t" >>"$results"
	fi
	line=$(printf '%-15s %12s runs  cov %-6s %s' "$t" "${runs:-?}" "${cov:-?}" "$result")
	echo "$line"
	summary="$summary$line
"
done

echo "== summary (${SECONDS_EACH}s per target)"
printf '%s' "$summary"
exit "$failed"
