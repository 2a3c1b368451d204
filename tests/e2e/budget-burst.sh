#!/bin/bash
# scripts/burst.sh (the quick start's burst demo) against a test
# gateway: it reports the mock's max_per_second within the budget and
# exits 0; with the budget off it says so.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
RATE=5 make_config
start_gw

out=$(sh "$top_srcdir/scripts/burst.sh" -n 15 -g "$GW_URL" -m "$MOCK_URL" -t "$TOKEN_A")
rc=$?
echo "$out" | sed 's/^/# /'
check "burst.sh exit status" "$rc" 0
check_match "all 15 forwarded" "$out" '15 x 200 forwarded'
check_match "the mock's max_per_second at the budget" "$out" 'max_per_second: 5 +budget: 5(\.0)?/s'
check_match "verdict" "$out" 'OK: the upstream stayed within the budget'
check "the mock saw 15" "$(mock_count)" 15

# With the budget off the gateway sends all at once: burst.sh says so.
stop_gw
RATE=0 make_config
start_gw
out=$(sh "$top_srcdir/scripts/burst.sh" -n 15 -g "$GW_URL" -m "$MOCK_URL" -t "$TOKEN_A")
check "budget off: exit 0" "$?" 0
check_match "budget off: reported" "$out" 'the budget is off'
check_match "budget off: the mock saw all 15 in one second" "$out" 'max_per_second: 15 '
finish
