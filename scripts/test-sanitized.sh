#!/bin/sh
# The whole `make check` suite against an AddressSanitizer +
# UndefinedBehaviorSanitizer build (./configure --enable-sanitizers),
# made out of tree in build-asan/ (or $ASAN_BUILD_DIR).  Every program
# the tests start, the gateway first of all, is instrumented: a memory
# error or undefined behaviour aborts it, and LeakSanitizer checks for
# leaks when it exits (tests/lib.sh fails a test whose gateway does
# not exit 0 on SIGTERM).  Prints "N passed, M failed" last.
#
#   scripts/test-sanitized.sh [make check arguments, e.g. TESTS=...]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${ASAN_BUILD_DIR:-$top/build-asan}
cd "$top" || exit 1
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null 2>&1
mkdir -p "$dir" && cd "$dir" || exit 1
if [ ! -f Makefile ] || ! grep -q 'fsanitize=address' Makefile; then
	"$top/configure" --quiet --enable-sanitizers || exit 1
fi
make -s -j"$(nproc)" >/dev/null || { make -j1 2>&1 | tail -n 30; exit 1; }

# halt_on_error: the first report ends the process, so the test fails.
# detect_leaks: LeakSanitizer at exit (it needs ptrace-like access to
# the process's threads, which this environment allows: checked in CI
# by the positive control below).
# disable_coredump=0: ASan would lower the core size limit itself, and
# tests/e2e/secrets-core.sh checks that cmgate does (and only when told).
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:\
detect_stack_use_after_return=1:strict_string_checks=1:\
check_initialization_order=1:strict_init_order=1:disable_coredump=0\
${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# Positive control: a leak in an instrumented program must be caught
# here, or a clean run below would prove nothing.
ctl=$(mktemp -d)
printf '#include <stdlib.h>\nint main(void){void *volatile p = malloc(7); p = 0; return p != 0;}\n' > "$ctl/leak.c"
cc_line=$(sed -n 's/^CC = //p' Makefile)
san=$(sed -n 's/^SAN_CFLAGS = //p' Makefile)
# shellcheck disable=SC2086
if $cc_line $san "$ctl/leak.c" -o "$ctl/leak" 2>/dev/null; then
	"$ctl/leak" >/dev/null 2>&1
	if [ $? -eq 0 ]; then
		echo "test-sanitized: LeakSanitizer does not work here (a planted leak went unseen)"
		rm -rf "$ctl"
		exit 1
	fi
fi
rm -rf "$ctl"

make -s -j"$(nproc)" check "$@" >/dev/null 2>&1
rc=$?
sh "$top/scripts/summary.sh" "$dir/tests"
exit $rc
