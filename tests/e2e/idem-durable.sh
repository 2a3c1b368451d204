#!/bin/bash
# Idempotency-Key durability: a stored outcome survives a restart and a
# kill -9 taken right after the answer (it is stored before it is
# sent); a request cut off in flight is not stored; a timeout is stored
# as outcome unknown (409 with the original request id, across a
# restart) until an operator runs cmgate-idem forget; the store's files
# are 0600 whatever the umask; one process per store; a store others
# may read is refused.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
IDEM=$top_builddir/src/cmgate-idem
start_mock
TIMEOUT_MS=1000 make_config
umask 000
start_gw
umask 022

post_key() { k=$1; f=$2; shift 2; post "$f" -H "Idempotency-Key: $k" "$@"; }
mode() { stat -c %a "$1"; }
kill9_gw() { kill -9 "$GW_PID"; wait "$GW_PID" 2>/dev/null; GW_PID=; }

st=$(post_key k-dur-1 "$SEED")
check "first use processed" "$st" 200
cp "$T/resp" "$T/d1.body"
check "store folder is 0700" "$(mode "$T/idem.db")" 700
check "data.mdb is 0600 (umask 000)" "$(mode "$T/idem.db/data.mdb")" 600
check "lock.mdb is 0600 (umask 000)" "$(mode "$T/idem.db/lock.mdb")" 600

# ---- restart ---------------------------------------------------------------
stop_gw
check "clean stop" "$GW_RC" 0
start_gw
st=$(post_key k-dur-1 "$SEED")
check "after a restart: replayed" "$st/$(resp_header Idempotent-Replayed)" 200/true
if cmp -s "$T/d1.body" "$T/resp"; then ok "after a restart: byte for byte"; CHECKS=$((CHECKS+1))
else fail "after a restart: body differs"; fi
check "after a restart: nothing upstream" "$(mock_count)" 1

# ---- kill -9 right after each answer ---------------------------------------
for i in 1 2 3; do
	st=$(post_key "k-dur-k9-$i" "$SEED")
	cp "$T/resp" "$T/k9-$i.body"
	kill9_gw
	start_gw
	st2=$(post_key "k-dur-k9-$i" "$SEED")
	check "kill -9 round $i: replayed" "$st/$st2/$(resp_header Idempotent-Replayed)" 200/200/true
	if cmp -s "$T/k9-$i.body" "$T/resp"; then ok "kill -9 round $i: byte for byte"; CHECKS=$((CHECKS+1))
	else fail "kill -9 round $i: body differs"; fi
done
check "kill -9 rounds: one upstream request each" "$(mock_count)" 4

# ---- kill -9 while in flight: not stored, the retry goes through -------
mock_behave '{"count":1,"delay_ms":800}'
post_key k-dur-cut "$SEED" >/dev/null &
CUT=$!
i=0; while [ $i -lt 100 ] && ! mock_stats | grep -q '"inflight":1[,}]'; do sleep 0.05; i=$((i + 1)); done
kill9_gw
wait $CUT 2>/dev/null
wait_until mock_idle || fail "the mock still holds the cut request"
start_gw
n0=$(mock_count)
st=$(post_key k-dur-cut "$SEED")
check "cut off in flight: the retry is processed" "$st/$(resp_header Idempotent-Replayed)" 200/
check "cut off in flight: the retry reached upstream" "$(mock_count)" $((n0 + 1))

# ---- a timeout: outcome unknown ----------------------------------------------
mock_behave '{"count":1,"delay_ms":2500}'
st=$(post_key k-dur-504 "$SEED")
check "upstream too slow: 504" "$st" 504
rid504=$(resp_header X-Request-Id)
# The mock answers (too late) meanwhile.
wait_until mock_idle || fail "the mock still holds the slow request"
n0=$(mock_count)
st=$(post_key k-dur-504 "$SEED")
check "retry after a 504: 409" "$st" 409
check "retry after a 504: code" "$(json_field "$T/resp" code)" idempotency_outcome_unknown
check_match "409 names the original request" "$(cat "$T/resp")" "request $rid504"
check "409 outcome unknown: no Retry-After" "$(resp_header Retry-After)" ""
check "retry after a 504: nothing upstream" "$(mock_count)" "$n0"
check_match "outcome unknown recorded with the original id" \
    "$(grep '"code":"idempotency_outcome_unknown"' "$T/audit.log")" "\"original_request_id\":\"$rid504\""
kill9_gw
start_gw
st=$(post_key k-dur-504 "$SEED")
check "after kill -9: still 409 outcome unknown" "$st/$(json_field "$T/resp" code)" 409/idempotency_outcome_unknown

# The operator's view and resolution (while the gateway runs).
"$IDEM" -c "$T/cmgate.json" list --unknown > "$T/unknown.out"
check "cmgate-idem list --unknown: one key" "$(wc -l < "$T/unknown.out" | tr -d ' ')" 1
check_match "cmgate-idem list --unknown: the key and request" "$(cat "$T/unknown.out")" \
    "\"caller\":\"onboarding\",\"key\":\"k-dur-504\",\"state\":\"outcome_unknown\",\"status\":504,\"request_id\":\"$rid504\""
"$IDEM" -c "$T/cmgate.json" show onboarding k-dur-1 > "$T/show.out"
check "cmgate-idem show: found" "$?" 0
check_nomatch "cmgate-idem show: no body unless asked" "$(cat "$T/show.out")" '"body"'
"$IDEM" -p "$T/idem.db" show onboarding k-dur-1 --body > "$T/show.out"
check_match "cmgate-idem show --body: the stored body" "$(cat "$T/show.out")" '"body":"\{'
"$IDEM" -c "$T/cmgate.json" show onboarding no-such-key >/dev/null 2>&1
check "cmgate-idem show: unknown key exits 1" "$?" 1
"$IDEM" -c "$T/cmgate.json" forget onboarding k-dur-504 >/dev/null
check "cmgate-idem forget" "$?" 0
n0=$(mock_count)
st=$(post_key k-dur-504 "$SEED")
check "after forget: processed anew" "$st/$(resp_header Idempotent-Replayed)" 200/
check "after forget: reached upstream" "$(mock_count)" $((n0 + 1))
"$IDEM" -c "$T/cmgate.json" forget onboarding k-dur-504 >/dev/null 2>&1; rc=$?
"$IDEM" -c "$T/cmgate.json" show onboarding k-dur-504 >/dev/null 2>&1
check "forget again removes the new record, then it is gone" "$rc/$?" 0/1

# ---- one process per store ------------------------------------------------
sed -e 's/"audit.log"/"audit2.log"/' "$T/cmgate.json" > "$T/second.json"
"$CMGATE" -c "$T/second.json" 2>"$T/second.err" &
P2=$!
i=0; while [ $i -lt 100 ] && kill -0 $P2 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
if kill -0 $P2 2>/dev/null; then kill $P2; wait $P2; rc=running; else wait $P2; rc=$?; fi
check "a second gateway on the same store is refused" "$rc" 1
check_match "... saying why" "$(cat "$T/second.err")" 'idempotency.path: .* is in use by another cmgate process'

# ---- a store others may read is refused ----------------------------------
stop_gw
chmod 644 "$T/idem.db/data.mdb"
"$CMGATE" -c "$T/cmgate.json" 2>"$T/mode.err"
check "world-readable data.mdb: refuses to start" "$?" 1
check_match "... saying why" "$(cat "$T/mode.err")" 'data.mdb is open to other users \(mode 644\)'
chmod 600 "$T/idem.db/data.mdb"
start_gw
st=$(post_key k-dur-1 "$SEED")
check "fixed: starts and still replays" "$st/$(resp_header Idempotent-Replayed)" 200/true
finish
