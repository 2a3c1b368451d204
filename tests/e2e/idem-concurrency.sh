#!/bin/bash
# Idempotency-Key under concurrency: a duplicate while the first is in
# flight gets 409 (Retry-After: 1), another body 422; a retry storm (the
# same key 50 times at once) makes exactly one upstream request; other
# keys do not wait for each other.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
start_gw

post_key() { k=$1; f=$2; shift 2; post "$f" -H "Idempotency-Key: $k" "$@"; }
# wait_inflight N: until the mock holds N requests waiting.
wait_inflight() {
	i=0
	while [ $i -lt 200 ]; do
		mock_stats | grep -q "\"inflight\":$1[,}]" && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# ---- a duplicate while the first is in flight -------------------------
# Held 3.5 s (under timeout_ms, 5 s): the three asks below must all
# come while it is in flight, on a busy machine too.
mock_behave '{"count":1,"delay_ms":3500}'
curl -s -o "$T/a.body" -D "$T/a.h" -w '%{http_code}' -H "Authorization: Bearer $TOKEN_A" \
    -H 'Content-Type: application/json' -H 'Idempotency-Key: k-conc-1' \
    --data-binary @"$SEED" "$GW_URL/management/clients/individuals" > "$T/a.st" &
A=$!
wait_inflight 1 || fail "the first request never reached the mock"
st=$(post_key k-conc-1 "$SEED")
check "duplicate in flight: 409" "$st" 409
check "duplicate in flight: code" "$(json_field "$T/resp" code)" idempotency_in_progress
check "duplicate in flight: Retry-After 1" "$(resp_header Retry-After)" 1
check "409 request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"
sed 's/"Maria"/"Marta"/' "$SEED" > "$T/other.json"
st=$(post_key k-conc-1 "$T/other.json")
check "other body while in flight: 422" "$st/$(json_field "$T/resp" code)" 422/idempotency_key_reused
st=$(TOKEN=$TOKEN_B post_key k-conc-1 "$SEED" -H 'X-Ignore: 1')
check "same key, other caller, while in flight: not blocked" "$st" 200
wait $A
check "the first one completes" "$(cat "$T/a.st")" 200
st=$(post_key k-conc-1 "$SEED")
check "after it completes: replayed" "$st/$(resp_header Idempotent-Replayed)" 200/true
if cmp -s "$T/a.body" "$T/resp"; then ok "replay equals the first answer"; CHECKS=$((CHECKS+1))
else fail "replay differs from the first answer"; fi
check "upstream saw one request per caller" "$(mock_count)" 2
check_match "409 recorded with its key" "$(grep '"type":"reject"' "$T/audit.log")" '"code":"idempotency_in_progress".*"idempotency_key":"k-conc-1"'

# ---- a retry storm: 50 at once, one upstream request --------------------
n0=$(mock_count)
mock_behave '{"count":1,"delay_ms":1000}'
pids=
i=0
while [ $i -lt 50 ]; do
	curl -s -o "$T/s$i.body" -D "$T/s$i.h" -w '%{http_code}' -H "Authorization: Bearer $TOKEN_A" \
	    -H 'Content-Type: application/json' -H 'Idempotency-Key: k-storm' \
	    --data-binary @"$SEED" "$GW_URL/management/clients/individuals" > "$T/s$i.st" &
	pids="$pids $!"
	i=$((i + 1))
done
wait $pids
check "storm: exactly one upstream request" "$(mock_count)" $((n0 + 1))
first=0; replays=0; busy=0; other=0
i=0
while [ $i -lt 50 ]; do
	st=$(cat "$T/s$i.st")
	rp=$(tr -d '\r' < "$T/s$i.h" | grep -i '^Idempotent-Replayed:' | sed 's/^[^:]*: *//')
	if [ "$st" = 200 ] && [ -z "$rp" ]; then first=$((first + 1))
	elif [ "$st" = 200 ] && [ "$rp" = true ]; then replays=$((replays + 1))
	elif [ "$st" = 409 ] && grep -q '"code":"idempotency_in_progress"' "$T/s$i.body"; then busy=$((busy + 1))
	else other=$((other + 1)); echo "# storm answer $i: $st $(cat "$T/s$i.body")"
	fi
	i=$((i + 1))
done
check "storm: one answer is the processed one" "$first" 1
check "storm: the others are 409 in progress or replays" "$((busy + replays))/$other" "49/0"
check_range "storm: most were in progress" "$busy" 10 49
# A retry after the storm replays the one outcome.
st=$(post_key k-storm "$SEED")
check "after the storm: replayed" "$st/$(resp_header Idempotent-Replayed)" 200/true
check "after the storm: still one upstream request" "$(mock_count)" $((n0 + 1))

# ---- other keys do not wait on each other -------------------------------
n0=$(mock_count)
mock_behave '{"count":10,"delay_ms":800}'
t0=$(date +%s%N)
pids=
i=0
while [ $i -lt 10 ]; do
	curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN_A" \
	    -H 'Content-Type: application/json' -H "Idempotency-Key: k-par-$i" \
	    --data-binary @"$SEED" "$GW_URL/management/clients/individuals" > "$T/p$i.st" &
	pids="$pids $!"
	i=$((i + 1))
done
wait $pids
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "10 keys: 10 upstream requests" "$(mock_count)" $((n0 + 10))
check "10 keys: all 200" "$(cat "$T"/p*.st | tr -d '\n')" "$(printf '200%.0s' 1 2 3 4 5 6 7 8 9 10)"
# One after the other they would take 10 x 800 ms; side by side each
# takes about 800 ms by the gateway's clock (the shell's, on a busy
# machine, only bounds it).
check_range "10 keys ran side by side (ms from the shell)" "$ms" 0 7999
log_settle
slowest=$(grep '"msg":"request"' "$T/gw.log" | tail -n 10 |
    sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p' | sort -n | tail -n1)
check_range "10 keys ran side by side (slowest total_ms)" "$slowest" 800 1599
finish
