#!/bin/sh
# Sum automake's per-test results (*.trs) under each DIR (default .)
# into one last line, exactly "N passed, M failed"; failures are listed
# (with the tail of their log) and skips counted on lines before it.
#
#   scripts/summary.sh [DIR...]
pass=0; fail=0; skip=0
[ $# -gt 0 ] || set -- .
for dir in "$@"; do
	for trs in $(find "$dir" -name '*.trs' 2>/dev/null | sort); do
		r=$(sed -n 's/^:test-result: //p' "$trs" | head -n1)
		name=${trs%.trs}
		case $r in
		PASS|XFAIL) pass=$((pass + 1)) ;;
		SKIP) skip=$((skip + 1)) ;;
		*) fail=$((fail + 1)); echo "FAILED: ${name#"$dir"/} (in $dir)"
		   [ -f "$name.log" ] && tail -n 40 "$name.log" ;;
		esac
	done
done
[ "$skip" -eq 0 ] || echo "($skip skipped)"
echo "$pass passed, $fail failed"
