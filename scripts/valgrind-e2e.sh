#!/bin/sh
# The end-to-end suite with the gateway under valgrind's memcheck: no
# invalid read or write, no use of uninitialised memory, no definite
# leak.  Each gateway writes its report to $VG_DIR/vg.<pid>.log; a
# report with an error makes that gateway exit 99 (--error-exitcode),
# which fails its test (tests/lib.sh), and is listed here.
#
#   scripts/valgrind-e2e.sh [TEST...]     (default: every e2e test)
#
# Uses the plain build in $BUILD_DIR (default build-valgrind/, made if
# missing).  Tests that measure time (a few ms budgets) can fail under
# valgrind's 20-50x slowdown without any memory error: they are
# reported apart, and only valgrind's findings decide the exit status.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${BUILD_DIR:-$top/build-valgrind}
command -v valgrind >/dev/null || { echo "valgrind-e2e: valgrind not installed"; exit 1; }
cd "$top" || exit 1
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null 2>&1
mkdir -p "$dir" && cd "$dir" || exit 1
[ -f Makefile ] || "$top/configure" --quiet || exit 1
make -s -j"$(nproc)" >/dev/null || exit 1
make -s -j"$(nproc)" check TESTS= >/dev/null 2>&1	# the test programs

VG_DIR=$dir/valgrind
rm -rf "$VG_DIR"; mkdir -p "$VG_DIR"
# Open to all: tests/e2e/secrets-core.sh runs the gateway as nobody.
chmod 1777 "$VG_DIR"
CMGATE_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full \
--show-leak-kinds=definite --errors-for-leak-kinds=definite \
--track-origins=yes --log-file=$VG_DIR/vg.%p.log"
export CMGATE_WRAPPER

if [ $# -gt 0 ]; then
	tests=$*
else
	tests=$(make -s -f Makefile -f - print-e2e <<'MK'
print-e2e:
	@echo $(E2E_TESTS)
MK
)
fi
# One at a time: under valgrind the gateway is slow enough already.
# shellcheck disable=SC2086
make -k check TESTS="$tests" >/dev/null 2>&1

bad=0
for f in "$VG_DIR"/vg.*.log; do
	[ -s "$f" ] || continue
	if grep -qE 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|Invalid (read|write)|uninitialised' "$f"; then
		bad=$((bad + 1))
		echo "valgrind: errors in $f:"
		grep -E '^==[0-9]+== (Invalid|Conditional|Use of|[0-9,]+ bytes in|   (at|by) )' "$f" | head -n 30
	fi
done
n=$(ls "$VG_DIR" | grep -c '^vg\.')
failed=""
for t in $tests; do
	r=$(sed -n 's/^:test-result: //p' "${t%.sh}.trs" 2>/dev/null | head -n1)
	[ "$r" = PASS ] || [ "$r" = SKIP ] || failed="$failed ${t#tests/e2e/}($r)"
done
echo "valgrind-e2e: $n gateway runs checked, $bad with errors"
[ -z "$failed" ] || echo "valgrind-e2e: tests that failed under valgrind:$failed"
# One result for scripts/summary.sh: valgrind's verdict.
if [ $bad -eq 0 ] && [ "$n" -gt 0 ]; then
	printf ':test-result: PASS\n' > "$VG_DIR/valgrind.trs"
else
	printf ':test-result: FAIL\n' > "$VG_DIR/valgrind.trs"
fi
[ $bad -eq 0 ] && [ "$n" -gt 0 ]
