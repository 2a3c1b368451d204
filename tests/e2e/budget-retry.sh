#!/bin/bash
# What the budget retries and what it never does.  A request that may
# have reached CryptoMate (a timeout after sending, an answer broken
# off) is never sent again.  One that never left (connection refused)
# goes back to its queue after a 0.25 s pause and is sent when
# CryptoMate is back, or, once upstream.retry_unsent_ms has passed since
# its first try (or its max_queue_wait_ms runs out), answered 502.
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

# reload: SIGHUP, then wait for one more "reload: config" line.
reload() {
	local n i=0
	n=$(grep -c 'reload: config' "$T/gw.log")
	kill -HUP "$GW_PID"
	while [ "$(grep -c 'reload: config' "$T/gw.log")" -le "$n" ]; do
		i=$((i + 1)); [ $i -le 200 ] || { fail "no reload"; return; }
		sleep 0.05
	done
}
# retry_unsent MS: sets upstream.retry_unsent_ms in $T/cmgate.json.
retry_unsent() {
	sed -i "s/\"max_queued\": \([0-9]*\)/\"max_queued\": \1, \"retry_unsent_ms\": $1/" \
	    "$T/cmgate.json"
}

# Never sent: CryptoMate down, back 1.5 s later on the same port.  With
# upstream.retry_unsent_ms 6000 the request is tried every 0.25 s and
# the first try after the mock is back gets through.
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=
RATE=10 TIMEOUT_MS=700 MAX_QUEUE_WAIT=8000 make_config
retry_unsent 6000
reload
t0=$(date +%s%N)
fire 1 "$TOKEN_A" down &
p=$!
retries() { [ "$(grep -c 'upstream not reached.*queued again' "$T/gw.log")" -ge "$1" ]; }
wait_until retries 5 || fail "no fifth try logged"
start_mock -l "127.0.0.1:$MOCK_PORT"
wait $p
t1=$(date +%s%N)
check "not sent: retried until CryptoMate is back, then 2xx" "$(count_codes down '2[0-9][0-9]')" 1
# (Its stats, not its log: start_mock empties the log once the mock
# listens, and a try may land before that.)
check "the mock saw it once" "$(json_field <(mock_stats) requests)" 1
# The gateway's own total_ms: the time from the shell (curl starting on
# a busy machine) is no measure of it.
total_ms() { log_settle; grep '"msg":"request"' "$T/gw.log" | grep "$1" | tail -n1 |
    sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p'; }
ms=$(total_ms '"status":200')
echo "# from the shell: $(( (t1 - t0) / 1000000 )) ms"
check_range "answered on a try after it came back (total_ms)" "$ms" 1000 5999
n=$(grep -c 'upstream not reached.*queued again' "$T/gw.log")
check_range "one try every 0.25 s while down (retries)" "$n" 5 25

# A closed port with the default upstream.retry_unsent_ms (1000): the
# caller has its 502 after about 1 s (generous range: 0.7..4.9 s), not
# after the whole max_queue_wait_ms (10 s here; it used to take 9 s).
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=
RATE=10 TIMEOUT_MS=700 MAX_QUEUE_WAIT=10000 make_config
reload
t0=$(date +%s%N)
st=$(post "$SEED")
t1=$(date +%s%N)
check "still down: 502" "$st" 502
check_match "502 code" "$(cat "$T/resp")" '"code":"upstream_unavailable"'
rid=$(resp_header X-Request-Id)
ms=$(total_ms "\"request_id\":\"$rid\"")
echo "# from the shell: $(( (t1 - t0) / 1000000 )) ms"
check_range "502 about the retry window later (total_ms)" "$ms" 700 4900
n=$(grep -c "request $rid: upstream not reached.*queued again" "$T/gw.log")
check_range "a few tries in about 1 s (retries)" "$n" 1 8
check_match "outcome: not_sent" \
    "$(grep "\"request_id\":\"$rid\"" "$T/audit.log" | grep '"type":"outcome"')" \
    '"error_class":"not_sent".*"client_status":502'

# upstream.retry_unsent_ms 0: no retry at all.
RATE=10 TIMEOUT_MS=700 MAX_QUEUE_WAIT=10000 make_config
retry_unsent 0
reload
t0=$(date +%s%N)
st=$(post "$SEED")
t1=$(date +%s%N)
check "retry_unsent_ms 0: 502" "$st" 502
rid=$(resp_header X-Request-Id)
ms=$(total_ms "\"request_id\":\"$rid\"")
check_range "retry_unsent_ms 0: at once (total_ms)" "$ms" 0 1999
check "retry_unsent_ms 0: no retry" "$(grep -c "request $rid: upstream not reached.*queued again" "$T/gw.log")" 0
finish
