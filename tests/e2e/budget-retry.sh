#!/bin/bash
# What the budget retries and what it never does.  A request that may
# have reached CryptoMate (a timeout after sending, an answer broken
# off) is never sent again.  One that never left (connection refused)
# goes back to its queue after a 0.25 s pause and is sent when
# CryptoMate is back, or, once upstream.retry_unsent_ms has passed since
# its first try (or its max_queue_wait_ms runs out), answered 502.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/budget-common.sh"
start_mock
RATE=10 TIMEOUT_MS=700 MAX_QUEUE_WAIT=5000 make_config
start_gw

mock_behave '{"count":1,"hang":true}'
st=$(post "$SEED")
check "timeout after send: 504" "$st" 504
check_match "504 code" "$(cat "$T/resp")" '"code":"upstream_timeout"'
sleep 1.5
check "timeout after send: sent once, never again" "$(mock_count)" 1

mock_behave '{"count":1,"close":true}'
st=$(post "$SEED")
check "answer broken off: 502" "$st" 502
sleep 1.5
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
sleep 1.5
rm -f "$T/mock.out"	# the last mock's "listening on" is not this one's
start_mock -l "127.0.0.1:$MOCK_PORT"
wait $p
t1=$(date +%s%N)
check "not sent: retried until CryptoMate is back, then 2xx" "$(count_codes down '2[0-9][0-9]')" 1
# (Its stats, not its log: start_mock empties the log once the mock
# listens, and a try may land before that.)
check "the mock saw it once" "$(json_field <(mock_stats) requests)" 1
ms=$(( (t1 - t0) / 1000000 ))
check_match "answered on a try after it came back, 1.5..5.9 s (${ms} ms)" "$ms" '^(1[5-9][0-9]{2}|[2-5][0-9]{3})$'
n=$(grep -c 'upstream not reached.*queued again' "$T/gw.log")
check_match "one try every 0.25 s while down: 5..25 retries ($n)" "$n" '^([5-9]|1[0-9]|2[0-5])$'

# A closed port with the default upstream.retry_unsent_ms (1000): the
# caller has its 502 after about 1 s (generous range: 0.7..4.9 s), not
# after the whole max_queue_wait_ms (10 s here; it used to take 9 s).
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=
RATE=10 TIMEOUT_MS=700 MAX_QUEUE_WAIT=10000 make_config
reload
t0=$(date +%s%N)
st=$(post "$SEED")
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
check "still down: 502" "$st" 502
check_match "502 code" "$(cat "$T/resp")" '"code":"upstream_unavailable"'
check_match "502 about the retry window later, 0.7..4.9 s (${ms} ms)" "$ms" '^([7-9][0-9]{2}|[1-4][0-9]{3})$'
rid=$(resp_header X-Request-Id)
n=$(grep -c "request $rid: upstream not reached.*queued again" "$T/gw.log")
check_match "a few tries in 1 s: 1..4 retries ($n)" "$n" '^[1-4]$'
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
ms=$(( (t1 - t0) / 1000000 ))
check "retry_unsent_ms 0: 502" "$st" 502
check_match "retry_unsent_ms 0: at once, under 2 s (${ms} ms)" "$ms" '^(1?[0-9]{1,3})$'
rid=$(resp_header X-Request-Id)
check "retry_unsent_ms 0: no retry" "$(grep -c "request $rid: upstream not reached.*queued again" "$T/gw.log")" 0
finish
