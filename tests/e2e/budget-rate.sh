#!/bin/bash
# The upstream budget under a flood: 300 requests from one caller over
# 3 s reach the mock at no more than rate_limit_per_sec in any 1 s
# window (and at about that rate: the budget is used, not wasted); what
# cannot be served within max_queue_wait_ms is answered 429 at once and
# never forwarded; a second caller's requests sent during the flood
# wait no longer than their fair share (round-robin: one interval per
# caller waiting, here 2 x 100 ms), not behind the flood.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/e2e/budget-common.sh"
start_mock
RATE=10 BURST=1 MAX_QUEUE_WAIT=3000 make_config
start_gw

# Caller A: 30 waves of 10, one every 100 ms (300 in 3 s).
i=0 pids=
while [ $i -lt 30 ]; do
	fire 10 "$TOKEN_A" flood $i &
	pids="$pids $!"
	sleep 0.1
	i=$((i + 1))
	# Caller B: one request at a time, from 1 s into the flood on.
	if [ $i -eq 10 ]; then
		( j=0; while [ $j -lt 8 ]; do fire 1 "$TOKEN_B" fair $j; j=$((j + 1)); done ) &
		pids="$pids $!"
	fi
done
wait $pids
check "300 flood answers" "$(wc -l < "$T/flood.codes" | tr -d ' ')" 300
check "8 answers for the second caller" "$(wc -l < "$T/fair.codes" | tr -d ' ')" 8

ok_a=$(count_codes flood '2[0-9][0-9]')
rl_a=$(count_codes flood 429)
ok_b=$(count_codes fair '2[0-9][0-9]')
echo "# caller A: $ok_a forwarded, $rl_a turned away; caller B: $ok_b forwarded"
check "every flood answer is 2xx or 429" "$((ok_a + rl_a))" 300
check "the second caller is never turned away" "$ok_b" 8

# The rates, as the mock saw them.
stats=$(mock_stats)
mps=$(printf '%s' "$stats" | sed -n 's/.*"max_per_second":\([0-9]*\).*/\1/p')
echo "# mock stats: $stats"
check_range "mock max_per_second <= 10" "$mps" 0 10
check_range "the budget is used: max_per_second >= 9" "$mps" 9 10
lmps=$(arrivals | max_per_second)
check_range "arrival log: at most 10 in any 1 s window" "$lmps" 0 10
# Spaced by the bucket (burst 1: 100 ms at the gateway, give or take
# the mock's own jitter), not sent in bunches.
gap=$(arrivals | min_gap)
check_range "burst 1: arrivals spaced out (min gap, ms)" "$gap" 50 999999
total=$(arrivals | wc -l | tr -d ' ')
check "only the 2xx were forwarded (429s never reached the mock)" "$total" "$((ok_a + ok_b))"
# At the budget, not below it, for as long as there was demand (about
# 3 s of flood plus up to 3 s of queue, longer when the machine is
# busy and the shell slow to start the waves): one send per 105 ms over
# the span of the arrivals, at most, and no fewer than 3/4 of that (a
# loop starved by a busy machine wakes late).
span=$(arrivals | awk 'NR == 1 { f = $1 } { l = $1 } END { printf "%d\n", (l - f) * 1000 }')
want=$((span / 105 + 1))
echo "# $total arrivals over $span ms"
check_range "forwarded at the budget, not below it" "$total" $((want * 3 / 4)) $((want + 1))
check_range "the flood kept the budget busy (span, ms)" "$span" 3000 20000

# Turned away at once, with a Retry-After.  The only late ones are
# those admitted before B came whose turns B then took (one per B
# request, give or take): answered at max_queue_wait_ms, never later.
# Timed by the gateway (total_ms), not by curl on a busy machine.
log_settle
slow=$(grep '"msg":"request"' "$T/gw.log" | grep '"status":429' |
    sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p' | awk '$1 > 1000' | wc -l | tr -d ' ')
check_range "429s answered at once (late ones)" "$slow" 0 12
late=$(awk '$1 == 429 && $3 > 3.5' "$T/flood.codes" | wc -l | tr -d ' ')
check "no 429 after max_queue_wait_ms" "$late" 0
nora=$(awk '$1 == 429 && $2 !~ /^[1-9][0-9]*$/' "$T/flood.codes" | wc -l | tr -d ' ')
check "every 429 carries Retry-After >= 1" "$nora" 0
f=$(awk '$1 == 429 { print $4; exit }' "$T/flood.codes")
check_match "429 body" "$(cat "$f")" '"code":"rate_limited"'

# Bounded waiting: nobody waited past max_queue_wait_ms.
qa=$(max_queue_ms onboarding)
check_range "caller A waited at most 3000 ms (ms)" "$qa" 0 3049
check_range "caller A really queued (ms)" "$qa" 500 9999

# Fairness: B waits for its own turn (at most 2 intervals of 105 ms,
# the spacing of 10/s), not behind A's queue (up to 3000 ms).
qb=$(max_queue_ms backoffice)
check_range "caller B waited its fair share only (ms)" "$qb" 0 300
tb=$(awk '{ if ($3 > m) m = $3 } END { printf "%d\n", m * 1000 }' "$T/fair.codes")
check_range "caller B answered within 1 s each (max ms)" "$tb" 0 999
b_arr=$(arrivals backoffice | wc -l | tr -d ' ')
check "caller B's requests all reached the mock" "$b_arr" 8
finish
