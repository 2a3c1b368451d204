#!/bin/bash
# CryptoMate's 429: "Retry-After: 2" pauses all forwarding for 2 s,
# every caller's, and the request that got it goes back to the head of
# its queue; the paused requests then succeed.  When the pause is longer
# than max_queue_wait_ms the 429 is relayed as is, and requests arriving
# during the pause are answered 429 at once, never forwarded.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/e2e/budget-common.sh"
start_mock
RATE=10 MAX_QUEUE_WAIT=5000 make_config
start_gw

mock_behave '{"count":1,"status":429,"retry_after":2,"body":{"error_code":"TOO_MANY_REQUESTS","message":"Too many requests"}}'
t0=$(date +%s%N)
fire 1 "$TOKEN_A" first &
p1=$!
# The 429 is back within a few ms; then the pause is visible.
wait_for "$T/gw.log" 'upstream answered 429' 100 || fail "no 429 retry logged"
h=$(healthz)
check_match "healthz: paused" "$h" '"upstream_budget":\{[^}]*"paused":true'
check_match "healthz: paused_until" "$h" '"paused_until":"20[0-9-]+T[0-9:.]+Z"'
check_match "healthz: the 429'd request waits at the head of its queue" "$h" '"onboarding":\{"queued":1'
fire 2 "$TOKEN_A" later a &
p2=$!
fire 2 "$TOKEN_B" later b &
p3=$!
wait_healthz '"onboarding":\{"queued":3.*"backoffice":\{"queued":2|"backoffice":\{"queued":2.*"onboarding":\{"queued":3' ||
    fail "the 4 later requests were not all queued within 10 s"
h=$(healthz)
check_match "healthz: queue depth per caller (A)" "$h" '"onboarding":\{"queued":3'
check_match "healthz: queue depth per caller (B)" "$h" '"backoffice":\{"queued":2'
check_match "healthz: still paused" "$h" '"paused":true'
check "nothing forwarded during the pause" "$(mock_count)" 1
wait $p1 $p2 $p3
t1=$(date +%s%N)

check "the 429'd request then succeeds" "$(count_codes first '2[0-9][0-9]')" 1
check "the requests paused meanwhile succeed" "$(count_codes later '2[0-9][0-9]')" 4
check "6 arrivals (the 429 and 5 successes)" "$(mock_count)" 6
first=$(arrivals | head -n1)
gap=$(arrivals | sed -n 2p | awk -v f="$first" '{ printf "%d\n", ($1 - f) * 1000 }')
check_range "nothing reached the mock for 2 s after the 429 (ms)" "$gap" 1990 2999
lmps=$(arrivals | max_per_second)
check_range "after the pause, still at most 10 per second" "$lmps" 0 10
ms=$(( (t1 - t0) / 1000000 ))
check_range "about 2 s in all (ms)" "$ms" 2000 3499
q=$(max_queue_ms onboarding)
check_range "the 429'd request's time in queue is logged (ms)" "$q" 1900 2999
log_settle
check_match "its access log line shows the final 2xx" \
    "$(grep '"msg":"request"' "$T/gw.log" | grep '"caller":"onboarding"' | head -n1)" \
    '"status":20[01],"upstream_status":20[01]'
h=$(healthz)
check_match "healthz: no longer paused" "$h" '"paused":false,"paused_until":null'
check_match "the pause is in the audit log, with its cause and length" \
    "$(grep '"type":"pause"' "$T/audit.log" | head -n1)" \
    '"cause":"rate_limited","pause_ms":2000'
check_match "the outcome records the time in queue" \
    "$(grep '"type":"outcome"' "$T/audit.log" | grep '"upstream_status":20[01]' | head -n1)" \
    '"queue_ms":[0-9]+\.[0-9]{3}'

# A pause longer than the wait limit: reload (SIGHUP) with 1 s of wait.
RATE=10 MAX_QUEUE_WAIT=1000 make_config
kill -HUP "$GW_PID"
wait_for "$T/gw.log" 'reload: config' || fail "no reload"
check_match "healthz: the new wait limit" "$(healthz)" '"max_queue_wait_ms":1000'
mock_behave '{"count":1,"status":429,"retry_after":3,"body":{"error_code":"TOO_MANY_REQUESTS","message":"Too many requests"}}'
st=$(post "$SEED")
check "429 relayed when Retry-After > max_queue_wait_ms" "$st" 429
check "relayed Retry-After" "$(resp_header Retry-After)" 3
check_match "CryptoMate's own body" "$(cat "$T/resp")" '"error_code":"TOO_MANY_REQUESTS"'
n=$(mock_count)
st=$(TOKEN=$TOKEN_B post "$SEED")
check "during the pause: 429 at once" "$st" 429
check_match "the gateway's code" "$(cat "$T/resp")" '"code":"rate_limited"'
check_range "Retry-After from the pause left (3 s - 1 s wait)" "$(resp_header Retry-After)" 1 2
rid=$(resp_header X-Request-Id)
check "not forwarded" "$(mock_count)" "$n"
check_match "outcome recorded in the audit log" \
    "$(grep "\"request_id\":\"$rid\"" "$T/audit.log" | grep '"type":"outcome"')" \
    '"error_class":"rate_limited".*"client_status":429'
log_settle
check_match "access log: rate_limited" \
    "$(grep "\"request_id\":\"$rid\"" "$T/gw.log")" '"status":429,"upstream_status":0.*"code":"rate_limited"'
wait_healthz '"paused":false' 200 || fail "still paused 10 s after a 3 s pause"
st=$(post "$SEED")
check "after the pause, forwarded again" "$st" 200
finish
