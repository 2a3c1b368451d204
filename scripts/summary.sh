#!/bin/sh
# Sum automake's per-test results (*.trs) under DIR into one line:
# "N passed, M failed" (skips and expected failures reported apart).
dir=${1:-.}
pass=0; fail=0; skip=0
for trs in $(find "$dir" -name '*.trs' 2>/dev/null); do
	r=$(sed -n 's/^:test-result: //p' "$trs" | head -n1)
	name=${trs%.trs}
	case $r in
	PASS|XFAIL) pass=$((pass + 1)) ;;
	SKIP) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)); echo "FAILED: ${name#$dir/}"
	   [ -f "$name.log" ] && tail -n 40 "$name.log" ;;
	esac
done
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
