#!/bin/bash
# The gateway's own 502 (nothing listening) and 504 (upstream too slow).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
TIMEOUT_MS=500 make_config
start_gw

mock_behave '{"count":1,"hang":true}'
t0=$(date +%s%N)
st=$(post "$SEED")
t1=$(date +%s%N)
check "hung upstream" "$st" 504
check_match "504 code" "$(cat "$T/resp")" '"code":"upstream_timeout"'
ms=$(( (t1 - t0) / 1000000 ))
check_range "504 after about timeout_ms (ms)" "$ms" 500 1999

kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=
st=$(post "$SEED")
check "upstream down" "$st" 502
check_match "502 code" "$(cat "$T/resp")" '"code":"upstream_unavailable"'
st=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
check "gateway still healthy" "$st" 200
finish
