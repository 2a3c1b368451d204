#!/bin/bash
# Idempotency-Key: what is not stored, and expiry.  CryptoMate's 5xx
# and 429 and the gateway's 502 when nothing was sent are not stored (a
# retry goes through); an answer broken off after sending is stored as
# outcome unknown; an expired key is processed anew; the store thread
# purges expired keys.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
IDEM=$top_builddir/src/cmgate-idem
# Test hook: purge every 300 ms instead of every 60 s.
CMGATE_IDEM_PURGE_MS=300; export CMGATE_IDEM_PURGE_MS
start_mock
make_config
sed -i 's/"idempotency": {/"idempotency": { "ttl_s": 2,/' "$T/cmgate.json"
start_gw

post_key() { k=$1; f=$2; shift 2; post "$f" -H "Idempotency-Key: $k" "$@"; }

# ---- CryptoMate's 5xx: not stored ----------------------------------------
mock_behave '{"count":1,"status":500,"body":"upstream broke","content_type":"text/plain"}'
st=$(post_key k-exp-500 "$SEED")
check "upstream 500 relayed" "$st" 500
st=$(post_key k-exp-500 "$SEED")
check "retry after a 500: processed" "$st/$(resp_header Idempotent-Replayed)" 200/
check "retry after a 500: reached upstream" "$(mock_count)" 2
st=$(post_key k-exp-500 "$SEED")
check "then the 200 is what is stored" "$st/$(resp_header Idempotent-Replayed)" 200/true
mock_behave '{"count":1,"status":503}'
st=$(post_key k-exp-503 "$SEED")
post_key k-exp-503 "$SEED" >/dev/null
check "503 not stored either" "$st/$(mock_count)" 503/4

# ---- CryptoMate's 429: not stored ------------------------------------------
mock_behave '{"count":1,"status":429,"retry_after":1}'
st=$(post_key k-exp-429 "$SEED")
check "upstream 429 relayed" "$st" 429
st=$(post_key k-exp-429 "$SEED")
check "retry after a 429: processed" "$st/$(resp_header Idempotent-Replayed)" 200/
check "retry after a 429: reached upstream" "$(mock_count)" 6

# ---- an answer broken off after sending: outcome unknown -------------------
# (count 2: libcurl resends once on a reused connection; see README.)
mock_behave '{"count":2,"close":true}'
st=$(post_key k-exp-broken "$SEED")
check "connection dropped by upstream: 502" "$st" 502
rid=$(resp_header X-Request-Id)
st=$(post_key k-exp-broken "$SEED")
check "retry after a broken answer: 409 outcome unknown" "$st/$(json_field "$T/resp" code)" 409/idempotency_outcome_unknown
check_match "... naming the original request" "$(cat "$T/resp")" "$rid"
curl -s -X POST "$MOCK_URL/_mock/reset" >/dev/null

# ---- expiry --------------------------------------------------------------
n0=$(mock_count)
st=$(post_key k-exp-ttl "$SEED")
st2=$(post_key k-exp-ttl "$SEED")
check "within the ttl: replayed" "$st/$st2/$(resp_header Idempotent-Replayed)" 200/200/true
check "within the ttl: one upstream request" "$(mock_count)" $((n0 + 1))
"$IDEM" -c "$T/cmgate.json" list > "$T/list1.out"
check_match "stored keys listed" "$(cat "$T/list1.out")" '"key":"k-exp-ttl","state":"completed"'
sleep 2.2
st=$(post_key k-exp-ttl "$SEED")
check "expired key: processed anew" "$st/$(resp_header Idempotent-Replayed)" 200/
check "expired key: reached upstream" "$(mock_count)" $((n0 + 2))
st=$(post_key k-exp-ttl "$SEED")
check "... and stored again" "$st/$(resp_header Idempotent-Replayed)" 200/true

# The purge: every key stored above is gone within ttl + a purge period.
sleep 2.6
"$IDEM" -c "$T/cmgate.json" list > "$T/list2.out"
check "expired keys purged from the store" "$(wc -l < "$T/list2.out" | tr -d ' ')" 0
check_match "purge logged" "$(cat "$T/gw.log")" 'idempotency: purged [0-9]+ expired keys'

# ---- nothing sent (CryptoMate unreachable): not stored ------------------
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=
st=$(post_key k-exp-down "$SEED")
check "upstream down: 502" "$st/$(json_field "$T/resp" code)" 502/upstream_unavailable
st=$(post_key k-exp-down "$SEED")
check "retry while down: tried again (502, not 409)" "$st/$(json_field "$T/resp" code)" 502/upstream_unavailable
"$IDEM" -c "$T/cmgate.json" show onboarding k-exp-down >/dev/null 2>&1
check "nothing stored for a request never sent" "$?" 1
finish
