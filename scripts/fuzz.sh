#!/bin/sh
# Build the libFuzzer targets with clang and run each for a bounded
# time (CI: 60 s each, on every push).
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]
#
# SECONDS defaults to $FUZZ_SECONDS, else 60.  Targets: "validate"
# (tests/fuzz/fuzz_validate.c: the body validator and normalizer),
# "config" (tests/fuzz/fuzz_config.c: the config parser) and "guard"
# (tests/fuzz/fuzz_guard.c: the guard's request head parser and its
# framing against evhttp's); all by default.  Everything is made in $FUZZ_DIR (default build-fuzz/): the
# binaries, a working corpus per target seeded from tests/fuzz/corpus/
# (which is only read), each run's log, and the crash-*, leak-*,
# timeout-* or oom-* input when the fuzzer finds something.  Each run
# also leaves an automake-style <target>.trs, so scripts/summary.sh
# counts it.  Exit status 0 when every target ran clean.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
targets=${*:-validate config guard}
dir=${FUZZ_DIR:-$top/build-fuzz}
CC_FUZZ=${CC_FUZZ:-clang}
mkdir -p "$dir" || exit 1

command -v "$CC_FUZZ" >/dev/null 2>&1 || {
	echo "fuzz: $CC_FUZZ not found (Debian: apt-get install clang libclang-rt-dev)"
	exit 1
}
CFLAGS_FUZZ="-g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -D_GNU_SOURCE -I$top/src"
LIBS_FUZZ="$(pkg-config --cflags --libs json-c libcrypto libcurl) -lpthread" || exit 1

build() { # build TARGET
	case $1 in
	validate)
		# The ISO 3166 tables are generated (as by make) into $dir.
		iso=${ISO_CODES_JSON:-/usr/share/iso-codes/json}
		sh "$top/scripts/gen-iso.sh" "$iso/iso_3166-1.json" \
		    "$iso/iso_3166-2.json" > "$dir/iso3166_data.c" || return 1
		srcs="tests/fuzz/fuzz_validate.c src/json_strict.c
		    src/validate.c src/validate_kyc.c src/iso3166.c
		    $dir/iso3166_data.c" ;;
	config) srcs="tests/fuzz/fuzz_config.c src/conf.c src/util.c" ;;
	guard) srcs="tests/fuzz/fuzz_guard.c src/guard_head.c" ;;
	*) echo "fuzz: unknown target $1"; return 1 ;;
	esac
	# shellcheck disable=SC2086
	(cd "$top" && $CC_FUZZ $CFLAGS_FUZZ $srcs $LIBS_FUZZ -o "$dir/fuzz_$1")
}

failed=0
for t in $targets; do
	trs=$dir/$t.trs log=$dir/$t.log
	rm -f "$trs"
	echo "fuzz: building fuzz_$t"
	if ! build "$t" > "$log" 2>&1; then
		cat "$log"
		printf ':test-result: FAIL\n' > "$trs"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$dir/corpus/$t"
	dict=
	[ -f "$top/tests/fuzz/$t.dict" ] && dict="-dict=$top/tests/fuzz/$t.dict"
	echo "fuzz: running fuzz_$t for $secs s"
	# The first folder collects new inputs; the seeds are only read.
	# shellcheck disable=SC2086
	"$dir/fuzz_$t" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
	    -artifact_prefix="$dir/$t-" $dict \
	    "$dir/corpus/$t" "$top/tests/fuzz/corpus/$t" >> "$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	if [ $rc -eq 0 ]; then
		echo "fuzz: fuzz_$t clean: ${runs:-?} runs in $secs s"
		printf ':test-result: PASS\n' > "$trs"
	else
		echo "fuzz: fuzz_$t FAILED (exit $rc); input and report in $dir:"
		ls "$dir" | grep -E "^$t-(crash|leak|timeout|oom)-" | sed 's/^/  /'
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -n 5
		printf ':test-result: FAIL\n' > "$trs"
		failed=$((failed + 1))
	fi
done
[ $failed -eq 0 ]
