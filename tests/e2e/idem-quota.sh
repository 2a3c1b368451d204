#!/bin/bash
# idempotency.max_keys_per_caller: a caller at its cap of stored keys
# gets 429 idempotency_quota_exceeded for a new key, alone (other
# callers, its stored keys' replays and its requests without a key go
# on); an outcome that is not stored takes no place; new keys in flight
# at once cannot overshoot the cap; the count survives a restart and
# goes down as keys expire and are purged.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
# Test hook: purge every 200 ms instead of every 60 s.
CMGATE_IDEM_PURGE_MS=200; export CMGATE_IDEM_PURGE_MS
start_mock -d 100
cap_config() { # cap_config TTL
	make_config
	sed -i "s/\"idempotency\": {/\"idempotency\": { \"max_keys_per_caller\": 3, \"ttl_s\": $1,/" "$T/cmgate.json"
}
cap_config 86400
start_gw

post_key() { k=$1; f=$2; shift 2; post "$f" -H "Idempotency-Key: $k" "$@"; }

# ---- the cap, for one caller ------------------------------------------------
check "key 1" "$(post_key q-1 "$SEED")" 200
check "key 2" "$(post_key q-2 "$SEED")" 200
mock_behave '{"count":1,"status":500,"body":"upstream broke","content_type":"text/plain"}'
check "an upstream 500 under a new key" "$(post_key q-500 "$SEED")" 500
printf '{"first_name":"Maria"}' > "$T/invalid.json"
check "a validation 422 under a new key" "$(post_key q-422 "$T/invalid.json")" 422
check "key 3: the 500 and the 422 took no place" "$(post_key q-3 "$SEED")" 200
n0=$(mock_count)
st=$(post_key q-4 "$SEED")
check "key 4: 429" "$st" 429
check "key 4: code" "$(json_field "$T/resp" code)" idempotency_quota_exceeded
check_match "key 4: a message" "$(json_field "$T/resp" message)" 'max_keys_per_caller'
check "key 4: Content-Type" "$(resp_header Content-Type)" application/json
check "key 4: request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"
check "key 4: nothing upstream" "$(mock_count)" "$n0"
st=$(post_key q-1 "$SEED")
check "a stored key still replays at the cap" "$st/$(resp_header Idempotent-Replayed)" 200/true
check "no key: still served" "$(post "$SEED")" 200
st=$(TOKEN=$TOKEN_B post_key q-4 "$SEED")
check "another caller is not limited" "$st" 200
check_match "the 429 is an audit reject record" \
    "$(grep '"code":"idempotency_quota_exceeded"' "$T/audit.log")" \
    '"type":"reject".*"caller":"onboarding".*"client_status":429.*"idempotency_key":"q-4"'

# ---- new keys in flight at once take places, not more ---------------------
# backoffice holds 1 key: of 8 new keys sent at once, 2 pass.
: > "$T/par.cfg.secret"
for i in $(seq 8); do
	[ "$i" -gt 1 ] && echo next >> "$T/par.cfg.secret"
	cat >> "$T/par.cfg.secret" <<EOF
url = "$GW_URL/management/clients/individuals"
header = "Authorization: Bearer $TOKEN_B"
header = "Content-Type: application/json"
header = "Idempotency-Key: par-$i"
data-binary = "@$SEED"
output = "/dev/null"
write-out = "%{http_code}\n"
EOF
done
curl -s --parallel --parallel-max 8 --parallel-immediate -K "$T/par.cfg.secret" > "$T/par.codes" 2>/dev/null
check "concurrent new keys: 2 pass" "$(grep -c '^200$' "$T/par.codes")" 2
check "concurrent new keys: 6 get 429" "$(grep -c '^429$' "$T/par.codes")" 6

# ---- the count survives a restart -------------------------------------------
stop_gw
cap_config 3
start_gw
st=$(post_key q-5 "$SEED")
check "after a restart: still at the cap" "$st/$(json_field "$T/resp" code)" 429/idempotency_quota_exceeded
st=$(post_key q-2 "$SEED")
check "after a restart: stored keys replay" "$st/$(resp_header Idempotent-Replayed)" 200/true

# ---- and goes down as keys expire -------------------------------------------
# ttl_s is now 3 s.  A fresh caller's keys expire; once purged, the caller
# has places again.
sed -i "s/\"name\": \"backoffice\"/\"name\": \"partner\"/" "$T/cmgate.json"
kill -HUP "$GW_PID"
wait_for "$T/gw.log" 'reload: config .* loaded' 100 || fail "no reload line"
te=$(date +%s%N)
for k in e-1 e-2 e-3; do
	check "partner key $k" "$(TOKEN=$TOKEN_B post_key $k "$SEED")" 200
done
st=$(TOKEN=$TOKEN_B post_key e-4 "$SEED")
if [ $(( ($(date +%s%N) - te) / 1000000 )) -lt 2500 ]; then
	check "partner at the cap" "$st/$(json_field "$T/resp" code)" 429/idempotency_quota_exceeded
else
	# The machine was too slow: the keys may have expired already.
	echo "# skipped 'partner at the cap': the keys were near their expiry"
fi
# Wait (bounded, 15 s) until the purge has deleted them from the store.
i=0
while "$top_builddir/src/cmgate-idem" -c "$T/cmgate.json" list 2>/dev/null |
    grep -q '"key":"e-[123]"' && [ $i -lt 300 ]; do
	sleep 0.05; i=$((i + 1))
done
check "the expired keys are purged" "$([ $i -lt 300 ] && echo yes)" yes
st=$(TOKEN=$TOKEN_B post_key e-4 "$SEED")
check "after the purge: places again" "$st" 200
finish
