#!/bin/bash
# Secrets never leave the gateway except in the upstream header: no log
# line, error body, audit record, /metrics output or test output holds
# the API key or a caller token.
#
# Runs after every other end-to-end test (Makefile.am makes its log
# depend on theirs).  First its own session, at log level debug and
# with whole bodies audited, puts the key and the tokens in every
# place a careless gateway might echo them: wrong schemes, the key
# offered as a token, tokens in paths, queries and other headers,
# config errors, a key rotated by SIGHUP.  Then it greps everything
# that session and every other test left (tests/lib.sh save_outputs:
# $OUTPUTS_DIR) and every test's own output, for the key prefix
# "cm-test-key-" and the token prefixes "tok-onboarding-" and
# "tok-backoffice-" of tests/lib.sh.  The mock's files (upstream.*) may
# hold the key, which is the upstream header, but never a token.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
AUDIT_BODY=full EXTRA=', "log": { "level": "debug" }' make_config
start_gw

n=0
ask() { # ask CURL-ARGS...: one request; its answer is kept
	n=$((n + 1))
	curl -s -o "$T/ans.$n" -D "$T/ans.$n.h" -w '%{http_code}' "$@"
}
API="$GW_URL/management/clients/individuals"
J='Content-Type: application/json'

st=$(ask -H "Authorization: Bearer $TOKEN_A" -H "$J" --data-binary @"$SEED" "$API")
check "a good request" "$st" 200
refused() { # refused LABEL AUTHORIZATION
	st=$(ask -H "Authorization: $2" -H "$J" --data-binary @"$SEED" "$API")
	check "refused: $1" "$st" 401
}
refused "a token under Basic" "Basic $TOKEN_A"
refused "a token with a byte more" "Bearer ${TOKEN_A}x"
refused "two tokens run together" "Bearer $TOKEN_B$TOKEN_A"
refused "the API key as a bearer token" "Bearer $API_KEY"
refused "a token under another scheme" "Token $TOKEN_B"
refused "a token without a scheme" "$TOKEN_A"
st=$(ask -H "Authorization: bearer  $TOKEN_B" -H "$J" --data-binary @"$SEED" "$API")
check "the scheme is case-insensitive, spaces are skipped" "$st" 200
st=$(ask -H "X-Api-Key: $API_KEY" -H "$J" --data-binary @"$SEED" "$API")
check "the key offered as x-api-key" "$st" 401
st=$(ask -H "Authorization: Bearer $TOKEN_A" -H "$J" -H "X-Token: $TOKEN_B" \
    -H "Cookie: s=$TOKEN_B" --data-binary @"$SEED" "$API?token=$TOKEN_B")
# No route takes a query string (400 bad_request); the point here is
# that neither the query nor the other headers reach any output.
check "tokens in a query and other headers: refused for the query" "$st" 400
st=$(ask -H "Authorization: Bearer $TOKEN_A" "$GW_URL/$TOKEN_B/$API_KEY")
check "tokens in a path" "$st" 404
st=$(ask -H "Authorization: Bearer $TOKEN_A" -H "$J" --data-binary '{"x":' "$API")
check "broken JSON with a token" "$st" 400
st=$(ask -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: text/plain' --data-binary @"$SEED" "$API")
check "wrong media type" "$st" 415
printf 'POST /management/clients/individuals HTTP/1.1\r\nAuthorization: Bearer %s\r\nX-Api-Key: %s\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' \
    "$TOKEN_A" "$API_KEY" > "$T/chunked.secret"
raw_http "$T/chunked.secret"
check "chunked with secrets in the head" "$RAW_STATUS" 411
mock_behave '{"count":1,"status":500,"body":"upstream broke"}'
st=$(ask -H "Authorization: Bearer $TOKEN_B" -H "$J" --data-binary @"$SEED" "$API")
check "an upstream 500" "$st" 500
mock_behave '{"count":2,"close":true}'
st=$(ask -H "Authorization: Bearer $TOKEN_B" -H "$J" --data-binary @"$SEED" "$API")
check "an upstream that hangs up" "$st" 502
ask "$GW_URL/metrics" > /dev/null
ask "$GW_URL/healthz" > /dev/null

# Config errors print no key: a world-readable key file, a key with a
# space in it.
chmod 644 "$T/api-key"
"$CMGATE" -t -c "$T/cmgate.json" > "$T/t-open.out" 2>&1
chmod 600 "$T/api-key"
check_match "world-readable key refused" "$(cat "$T/t-open.out")" 'too open'
cp -p "$T/api-key" "$T/api-key.good"
printf '%s x\n' "$API_KEY" > "$T/api-key"
"$CMGATE" -t -c "$T/cmgate.json" > "$T/t-space.out" 2>&1
check_match "key with a space refused" "$(cat "$T/t-space.out")" 'not allowed in a header'

# A rotated key (SIGHUP): the new key is used, and printed nowhere.
NEW_KEY=cm-test-key-$$-rotated
printf '%s\n' "$NEW_KEY" > "$T/api-key"
chmod 600 "$T/api-key"
curl -s -X POST "$MOCK_URL/_mock/reset" > /dev/null
reload_gw || fail "no reload line"
st=$(ask -H "Authorization: Bearer $TOKEN_A" -H "$J" --data-binary @"$SEED" "$API")
check "after the rotation the new key is sent" "$(tail -n1 "$T/mock.log" | grep -c "$NEW_KEY")" 1
"$CMGATE_AUDIT" show "$T/audit.log" > "$T/audit-show.out" 2>&1
stop_gw
check "clean exit" "$GW_RC" 0
save_outputs
SAVE_OUTPUTS=no		# saved once, for the scan below

# ---- the scan ------------------------------------------------------
# scan FILE...: prints the files that hold a secret they must not.
TOKEN_RE='tok-onboarding-|tok-backoffice-'
KEY_RE='cm-test-key-'
scan() {
	for f in "$@"; do
		[ -f "$f" ] || continue
		case $(basename "$f") in
		upstream.*) re=$TOKEN_RE ;;
		*) re="$KEY_RE|$TOKEN_RE" ;;
		esac
		if grep -aEq -- "$re" "$f"; then
			echo "$f: $(grep -aEo -- "$re" "$f" | sort | uniq -c | tr -s ' \n' '  ')"
		fi
	done
}
# The method finds what it looks for: the mock saw the key, and a file
# holding a token is reported.
check_match "positive control: the key is in the upstream's log" \
    "$(grep -c -- "$API_KEY" "$T/mock.log")" '^[1-9][0-9]*$'
printf 'x %s x\n' "$TOKEN_A" > "$T/control.out"
check_match "positive control: a planted token is found" "$(scan "$T/control.out")" 'control.out'
rm -f "$T/control.out"

mine=$OUTPUTS_DIR/secrets.$$
check_range "this session's outputs were saved" "$(ls "$mine" | wc -l)" 1 1000000
check_range "its upstream saw the key" "$(cat "$mine"/upstream.* | grep -c -- "$KEY_RE")" 1 1000000
found=$(scan "$mine"/*)
check "this session's outputs hold no secret" "$found" ""

# Every other test's outputs, and every test's own output (automake's
# logs), this one's excepted.
files=$(find "$OUTPUTS_DIR" -type f ! -path "$mine/*" 2>/dev/null)
logs=$(find "$top_builddir/tests" -name '*.log' ! -name 'secrets.log' \
    ! -name 'test-suite.log' ! -path "$OUTPUTS_DIR/*" 2>/dev/null)
nf=$(printf '%s\n' $files | grep -c .)
nl=$(printf '%s\n' $logs | grep -c .)
echo "# scanning $nf files other tests left and $nl test logs"
# shellcheck disable=SC2086
found=$(scan $files $logs)
check "no other test's outputs hold a secret" "$found" ""
[ -z "$found" ] || printf '%s\n' "$found" | head -n 20 | sed 's/^/#   /'
# What was scanned is done with (kept when something was found).
[ -n "$found" ] || rm -rf "$OUTPUTS_DIR"
finish
