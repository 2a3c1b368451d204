#!/bin/bash
# SIGHUP: the request in flight finishes with the old API key and the
# next one uses the new; a rotation under load fails no request; the
# caller list changes; a broken config (bad JSON, missing, too open or
# empty key file, bad value) keeps the running one, says why, and shows
# in /metrics.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

# The mock WITHOUT a key check: its log shows which x-api-key came.
"$MOCK" -l 127.0.0.1:0 -L "$T/mock.log" >"$T/mock.out" 2>"$T/mock.err" &
MOCK_PID=$!
wait_for "$T/mock.out" "listening on" || { echo "mock did not start"; exit 99; }
MOCK_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$T/mock.out" | head -n1)
MOCK_URL=http://127.0.0.1:$MOCK_PORT
make_config
start_gw

KEY1=$API_KEY
KEY2=cm-rotated-key-$$-9876543210
KEY3=cm-third-key-$$-5555555555
TOKEN_C=tok-reporting-$$-mnopqr

# Counts only: the keys themselves never go to the test output.
keycount() { grep -c -F "\"x-api-key\":\"$1\"" "${2:-$T/mock.log}"; }
set_key() { # set_key KEY: replace the key file the way an operator would
	( umask 077; printf '%s\n' "$1" > "$T/api-key.new" )
	mv "$T/api-key.new" "$T/api-key"
}
hup() { # hup: SIGHUP, then wait for the gateway's reload line
	local n i=0
	n=$(grep -c '"msg":"reload' "$T/gw.log")
	kill -HUP "$GW_PID"
	while [ "$(grep -c '"msg":"reload' "$T/gw.log")" -le "$n" ] && [ $i -lt 200 ]; do
		sleep 0.05; i=$((i + 1))
	done
}
mval() { curl -s "$GW_URL/metrics" | awk -v k="$1" 'index($0, k " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }'; }

# ---- in flight keeps the old key, the next request gets the new ------
mock_behave '{"count":1,"delay_ms":1000}'
post "$SEED" > "$T/slow.code" &
slow=$!
i=0
while [ $i -lt 100 ] && ! mock_stats | grep -q '"inflight":1'; do sleep 0.05; i=$((i + 1)); done
set_key "$KEY2"
hup
check_match "reload logged" "$(grep '"msg":"reload' "$T/gw.log" | tail -n1)" 'reload: config .* loaded'
check "request after the reload" "$(post "$SEED")" 200
wait $slow
check "request in flight during the reload" "$(cat "$T/slow.code")" 200
check "in-flight request went with the old key" "$(keycount "$KEY1")" 1
check "the next one with the new key" "$(keycount "$KEY2")" 1
check "reload counted" "$(mval 'cmgate_config_reloads_total{result="success"}')" 1

# ---- rotation under load: no failed request ---------------------------
mock_behave '{"default":{"delay_ms":20}}'
: > "$T/mock.log"
cfg=$T/curl.cfg
: > "$cfg"
i=0
while [ $i -lt 600 ]; do
	printf 'url = "%s/management/clients/individuals"\noutput = "/dev/null"\n' "$GW_URL" >> "$cfg"
	i=$((i + 1))
done
curl -s --no-progress-meter --parallel --parallel-max 16 -K "$cfg" \
    -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
    --data-binary @"$SEED" -w '%{http_code}\n' > "$T/codes" &
load=$!
i=0
while [ "$(mock_count)" -lt 100 ] && [ $i -lt 200 ]; do sleep 0.02; i=$((i + 1)); done
set_key "$KEY3"
hup
after=$(mock_count)
wait $load
check "600 answers" "$(wc -l < "$T/codes" | tr -d ' ')" 600
check "all 600 were 200 across the reload" "$(grep -c '^200$' "$T/codes")" 600
n2=$(keycount "$KEY2"); n3=$(keycount "$KEY3")
echo "# under load: $n2 requests with the old key, $n3 with the new (reload after $after)"
check "old key used before the reload" "$([ "$n2" -ge 100 ] && echo yes || echo "no ($n2)")" yes
check "new key used after the reload" "$([ "$n3" -ge 100 ] && echo yes || echo "no ($n3)")" yes
check "every upstream request carried one of the two keys" "$((n2 + n3))" "$(mock_count)"
mock_behave '{"default":{"delay_ms":0}}'

# ---- the caller list ----------------------------------------------------
check "unknown caller refused before" "$(TOKEN=$TOKEN_C post "$SEED")" 401
check "backoffice allowed before" "$(TOKEN=$TOKEN_B post "$SEED")" 200
sed "s/\"name\": \"backoffice\", \"token_sha256\": \"[0-9a-f]*\"/\"name\": \"reporting\", \"token_sha256\": \"$(sha256_hex "$TOKEN_C")\"/" \
    "$T/cmgate.json" > "$T/new.json"
check "config edited" "$(grep -c reporting "$T/new.json")" 1
mv "$T/new.json" "$T/cmgate.json"
hup
check "new caller allowed after" "$(TOKEN=$TOKEN_C post "$SEED")" 200
check "removed caller refused after" "$(TOKEN=$TOKEN_B post "$SEED")" 401
check "metrics name the new caller" "$(mval "cmgate_requests_total{route=\"individuals.create\",caller=\"reporting\",code=\"200\"}")" 1

# ---- broken configs keep the running one --------------------------------
cp "$T/cmgate.json" "$T/good.json"
fails=0
broken() { # broken DESCRIPTION REASON-REGEX: config already broken; HUP
	hup
	fails=$((fails + 1))
	line=$(grep '"msg":"reload' "$T/gw.log" | tail -n1)
	check_match "$1: reload refused" "$line" 'reload failed, keeping the running config'
	check_match "$1: says why" "$line" "$2"
	: > "$T/mock.log"
	check "$1: still serving" "$(post "$SEED")" 200
	check "$1: still the running key" "$(keycount "$KEY3")" 1
	check "$1: still the running callers" "$(TOKEN=$TOKEN_C post "$SEED")" 200
	check "$1: failure counted" "$(mval 'cmgate_config_reloads_total{result="failure"}')" "$fails"
	check "$1: last reload unsuccessful" "$(mval cmgate_config_last_reload_successful)" 0
	cp "$T/good.json" "$T/cmgate.json"
}
sed 's/"listen"/listen/' "$T/good.json" > "$T/cmgate.json"
broken "invalid JSON" 'invalid JSON'
sed 's/"timeout_ms": [0-9]*/"timeout_ms": 0/' "$T/good.json" > "$T/cmgate.json"
broken "value out of range" 'upstream.timeout_ms: must be'
sed 's/"api_key_file": "api-key"/"api_key_file": "no-such-key"/' "$T/good.json" > "$T/cmgate.json"
broken "missing key file" 'upstream.api_key_file: .*no-such-key'
printf '%s\n' "cm-leaked-$$" > "$T/open-key"
chmod 644 "$T/open-key"
sed 's/"api_key_file": "api-key"/"api_key_file": "open-key"/' "$T/good.json" > "$T/cmgate.json"
broken "world-readable key file" 'too open'
( umask 077; : > "$T/empty-key" )
sed 's/"api_key_file": "api-key"/"api_key_file": "empty-key"/' "$T/good.json" > "$T/cmgate.json"
broken "empty key file" 'empty'
check "no refused key was ever used" "$(grep -c -F "cm-leaked-$$" "$T/mock.log")" 0

hup
check_match "a fixed config reloads" "$(grep '"msg":"reload' "$T/gw.log" | tail -n1)" 'reload: config .* loaded'
check "last reload successful again" "$(mval cmgate_config_last_reload_successful)" 1

# The log never holds a key or a token.
check "no API key in the gateway log" "$(grep -c -F -e "$KEY1" -e "$KEY2" -e "$KEY3" -e "cm-leaked-$$" "$T/gw.log")" 0
check "no caller token in the gateway log" "$(grep -c -F -e "$TOKEN_A" -e "$TOKEN_B" -e "$TOKEN_C" "$T/gw.log")" 0
stop_gw
check "clean exit" "$GW_RC" 0
finish
