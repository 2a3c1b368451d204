#!/bin/bash
# What the budget retries and what it never does.  A request that may
# have reached CryptoMate (a timeout after sending, an answer broken
# off) is never sent again.  One that never left (connection refused)
# goes back to its queue after a 1 s pause and is sent when CryptoMate
# is back, or, when its max_queue_wait_ms runs out first, answered 502.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/e2e/budget-common.sh"
start_mock
RATE=10 TIMEOUT_MS=700 MAX_QUEUE_WAIT=5000 make_config
start_gw

mock_behave '{"count":1,"hang":true}'
st=$(post "$SEED")
check "timeout after send: 504" "$st" 504
check_match "504 code" "$(cat "$T/resp")" '"code":"upstream_timeout"'
# Answered means done: nothing of it is queued or in flight, so
# nothing of it can be sent later.
nothing_left() {
	check_match "$1: nothing queued or in flight" "$(healthz)" \
	    '"upstream_inflight":0,"upstream_budget":\{[^}]*"queued":0,'
}
nothing_left "timeout after send"
check "timeout after send: sent once, never again" "$(mock_count)" 1

mock_behave '{"count":1,"close":true}'
st=$(post "$SEED")
check "answer broken off: 502" "$st" 502
nothing_left "answer broken off"
check "answer broken off: sent once, never again" "$(mock_count)" 2
check_nomatch "no retry logged for either" "$(cat "$T/gw.log")" 'queued again'

# Never sent: CryptoMate down, back after the second try on the same
# port (tries at about 0, 1 and 2 s; the last one gets through).
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=
t0=$(date +%s%N)
fire 1 "$TOKEN_A" down &
p=$!
retries() { [ "$(grep -c 'upstream not reached.*queued again' "$T/gw.log")" -ge "$1" ]; }
wait_until retries 2 || fail "no second try logged"
start_mock -l "127.0.0.1:$MOCK_PORT"
wait $p
t1=$(date +%s%N)
check "not sent: retried until CryptoMate is back, then 2xx" "$(count_codes down '2[0-9][0-9]')" 1
check "the mock saw it once" "$(mock_count)" 1
# The gateway's own total_ms: the time from the shell (curl starting on
# a busy machine) is no measure of it.
total_ms() { log_settle; grep '"msg":"request"' "$T/gw.log" | grep "$1" | tail -n1 |
    sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p'; }
ms=$(total_ms '"status":200')
echo "# from the shell: $(( (t1 - t0) / 1000000 )) ms"
check_range "answered on the try after it came back (total_ms)" "$ms" 1900 2999
n=$(grep -c 'upstream not reached.*queued again' "$T/gw.log")
check "one try a second while down: 2 retries" "$n" 2

# Down for longer than the wait: 502 once max_queue_wait_ms runs out.
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=
RATE=10 TIMEOUT_MS=700 MAX_QUEUE_WAIT=2500 make_config
kill -HUP "$GW_PID"
wait_for "$T/gw.log" 'reload: config' || fail "no reload"
t0=$(date +%s%N)
st=$(post "$SEED")
t1=$(date +%s%N)
check "still down after the wait: 502" "$st" 502
check_match "502 code" "$(cat "$T/resp")" '"code":"upstream_unavailable"'
rid=$(resp_header X-Request-Id)
ms=$(total_ms "\"request_id\":\"$rid\"")
echo "# from the shell: $(( (t1 - t0) / 1000000 )) ms"
check_range "after 3 tries, within the 2.5 s wait (total_ms)" "$ms" 1800 2999
check "3 tries: 2 retries logged" "$(grep -c "request $rid: upstream not reached" "$T/gw.log")" 2
check_match "outcome: not_sent" \
    "$(grep "\"request_id\":\"$rid\"" "$T/audit.log" | grep '"type":"outcome"')" \
    '"error_class":"not_sent".*"client_status":502'
finish
