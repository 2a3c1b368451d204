#!/bin/bash
# Idempotency-Key store limits: the LMDB map grows when full; when it
# cannot (here a 2 MiB cap, a test hook), the answer being stored still
# goes out, and keyed requests then fail closed with 503
# idempotency_unavailable (nothing forwarded) while unkeyed ones go on.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
CMGATE_IDEM_MAP_BYTES=1048576; CMGATE_IDEM_MAP_MAX_BYTES=2097152
export CMGATE_IDEM_MAP_BYTES CMGATE_IDEM_MAP_MAX_BYTES
start_mock
make_config
start_gw

post_key() { k=$1; f=$2; shift 2; post "$f" -H "Idempotency-Key: $k" "$@"; }

# CryptoMate answers with 300 KB bodies from now on.
pad=$(head -c 300000 /dev/zero | tr '\0' 'x')
printf '{"default":{"status":200,"body":{"id":"cl-big","pad":"%s"}}}' "$pad" > "$T/rule.json"
curl -s -X POST --data-binary @"$T/rule.json" "$MOCK_URL/_mock/behave" >/dev/null

i=1; last=
while [ $i -le 12 ]; do
	last=$(post_key "k-big-$i" "$SEED")
	grep -q 'idempotency: store failed' "$T/gw.log" && break
	i=$((i + 1))
done
check_match "the map grew first" "$(cat "$T/gw.log")" 'idempotency: store grown to 2 MiB'
check_match "then the store failed" "$(cat "$T/gw.log")" 'idempotency: store failed: MDB_MAP_FULL'
check "the answer that could not be stored still went out" "$last" 200
check_match "... and its request is named in the log" "$(cat "$T/gw.log")" "the outcome of request $(resp_header X-Request-Id) was not stored"
size=$(wc -c < "$T/resp" | tr -d ' ')
check_range "... whole (bytes)" "$size" 300000 300099

n0=$(mock_count)
st=$(post_key k-big-after "$SEED")
check "keyed request after the failure: 503" "$st/$(json_field "$T/resp" code)" 503/idempotency_unavailable
st=$(post_key k-big-1 "$SEED")
check "a stored key is not replayed either: 503" "$st" 503
st=$(curl -s -o "$T/h" -w '%{http_code}' "$GW_URL/healthz")
check "healthz goes red with the store" "$st" 503
check_match "healthz names the store" "$(cat "$T/h")" '"idempotency":"failed"'
check_match "so does /metrics" "$(curl -s "$GW_URL/metrics")" 'cmgate_idempotency_healthy 0'
check "nothing forwarded for them" "$(mock_count)" "$n0"
st=$(post "$SEED")
check "unkeyed requests go on" "$st" 200
check "... and reach upstream" "$(mock_count)" $((n0 + 1))
check_match "refusal recorded with its key" "$(grep '"type":"reject"' "$T/audit.log")" '"code":"idempotency_unavailable".*"idempotency_key":"k-big-after"'

# A restart with room (no cap) replays what was stored before the failure.
stop_gw
unset CMGATE_IDEM_MAP_MAX_BYTES
start_gw
st=$(post_key k-big-1 "$SEED")
check "after a restart: replayed" "$st/$(resp_header Idempotent-Replayed)" 200/true
check_range "... whole (bytes)" "$(wc -c < "$T/resp" | tr -d ' ')" 300000 300099
finish
