#!/bin/bash
# Bounded queue: over upstream.max_queued a request is answered 429
# rate_limited with Retry-After at once, recorded, never forwarded; the
# queued ones wait their turn (time in queue in the access log line).
# A caller's own ceiling (callers[].rate_limit_per_sec) holds it under
# its rate without slowing the others.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/e2e/budget-common.sh"
start_mock
RATE=1 BURST=1 MAX_QUEUED=3 MAX_QUEUE_WAIT=60000 make_config
start_gw

# 10 at once at 1/s: one goes now, 3 wait, 6 are turned away.
fire 10 "$TOKEN_A" full &
p=$!
# One goes, 3 queue, 6 are answered 429 at once: wait for that state
# (the first of the 3 is sent about 1 s later).
wait_healthz '"queued":3,"max_queued":3,.*"paused":false,"paused_until":null.*"onboarding":\{"queued":3' 100
check "healthz: 3 waiting for onboarding (of 3 at most), not paused" "$?" 0
n429() { log_settle; grep '"msg":"request"' "$T/gw.log" | grep -c '"status":429'; }
wait_until eval '[ "$(n429)" -ge 6 ]'
check "6 answered already, without waiting" "$(n429)" 6
wait $p
check "4 forwarded" "$(count_codes full '2[0-9][0-9]')" 4
check "6 turned away" "$(count_codes full 429)" 6
check "the mock saw only the 4" "$(mock_count)" 4
slow=$(awk '$1 == 429 && $3 > 0.5' "$T/full.codes" | wc -l | tr -d ' ')
check "every 429 at once (under 0.5 s)" "$slow" 0
nora=$(awk '$1 == 429 && $2 !~ /^[1-9][0-9]*$/' "$T/full.codes" | wc -l | tr -d ' ')
check "every 429 has a Retry-After" "$nora" 0
f=$(awk '$1 == 429 { print $4; exit }' "$T/full.codes")
check_match "429 body: the gateway's rate_limited" "$(cat "$f")" '^\{"code":"rate_limited","message":"[^"]+","request_id":"[0-9a-f]{32}"\}$'
n=$(grep '"type":"outcome"' "$T/audit.log" | grep -c '"error_class":"rate_limited","response_digest":"[0-9a-f]*","client_status":429')
check "6 outcome records for the 429s" "$n" 6
gap=$(arrivals | min_gap)
check_range "1/s: arrivals about 1 s apart (min gap, ms)" "$gap" 950 1999
q=$(max_queue_ms onboarding)
check_range "the last one waited ~3 s in the queue (ms)" "$q" 2800 3499
log_settle
nq=$(grep '"msg":"request"' "$T/gw.log" | grep '"status":200' | grep -c '"queue_ms":[1-9]')
check "three 2xx lines with a time in queue" "$nq" 3
stop_gw

# Ceiling: A limited to 2/s under a global 20/s; B is not slowed.
: > "$T/mock.log"
curl -s -X POST "$MOCK_URL/_mock/reset" >/dev/null
RATE=20 MAX_QUEUED=1000 MAX_QUEUE_WAIT=10000 \
    CALLER_A_EXTRA=', "rate_limit_per_sec": 2' make_config
start_gw
check_match "healthz: A's ceiling" "$(healthz)" '"onboarding":\{"queued":0,"oldest_wait_ms":0,"rate_limit_per_sec":2(\.0)?\}'
fire 8 "$TOKEN_A" ceil a &
pa=$!
fire 8 "$TOKEN_B" free b &
pb=$!
wait $pb
check "B's 8 all forwarded" "$(count_codes free '2[0-9][0-9]')" 8
tb=$(awk '{ if ($3 > m) m = $3 } END { printf "%d\n", m * 1000 }' "$T/free.codes")
check_range "B is not held back by A's ceiling (max ms)" "$tb" 0 999
wait $pa
check "A's 8 all forwarded" "$(count_codes ceil '2[0-9][0-9]')" 8
ma=$(arrivals onboarding | max_per_second)
check_range "A reaches the mock at <= 2 per second" "$ma" 1 2
ga=$(arrivals onboarding | min_gap)
check_range "A's arrivals ~525 ms apart (min gap, ms)" "$ga" 450 9999
mb=$(arrivals backoffice | max_per_second)
check_range "B at its share of 20/s" "$mb" 5 8
stop_gw

# The ceiling holds with the budget off too; the others pass straight.
: > "$T/mock.log"
RATE=0 CALLER_A_EXTRA=', "rate_limit_per_sec": 2' make_config
start_gw
fire 4 "$TOKEN_A" off-a a &
pa=$!
fire 8 "$TOKEN_B" off-b b
check "budget off: B's 8 forwarded" "$(count_codes off-b '2[0-9][0-9]')" 8
check "budget off: B all at once" "$(arrivals backoffice | max_per_second)" 8
wait $pa
check "budget off: A's 4 forwarded" "$(count_codes off-a '2[0-9][0-9]')" 4
ga=$(arrivals onboarding | min_gap)
check_range "budget off: A still spaced by its ceiling (min gap, ms)" "$ga" 450 9999
finish
