#!/bin/bash
# More than one Authorization header is no credential (issue #12,
# defect 10): a proxy or sidecar that appends its own header must not
# let the caller choose the identity by putting theirs first.  Each
# such request is a 401 JSON error and never reaches the upstream,
# whatever the order and whether either token is valid.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
start_gw

m0=$(mock_count)
st=$(TOKEN=$TOKEN_B post "$SEED")
check "one Authorization header (the control): forwarded" "$st" 200
m0=$((m0 + 1))

# auth_row NAME HEADER...: a valid create with these header lines as its
# only Authorization headers; it must be 401 unauthenticated.
auth_row() {
	local name=$1 h; shift
	{ printf 'POST /management/clients/individuals HTTP/1.1\r\nHost: t\r\n'
	  printf 'Content-Type: application/json\r\nContent-Length: %d\r\n' \
	      "$(wc -c < "$SEED")"
	  for h in "$@"; do printf '%s\r\n' "$h"; done
	  printf '\r\n'; cat "$SEED"; } > "$T/auth.secret"
	raw_http "$T/auth.secret" 5
	check "$name: 401 unauthenticated" "$RAW_STATUS $(raw_code)" \
	    "401 unauthenticated"
	check_match "... as JSON with a request id" "$(cat "$T/raw.body")" \
	    '"request_id":"[0-9a-f]{32}"'
}
auth_row "the same valid token twice" \
    "Authorization: Bearer $TOKEN_A" "Authorization: Bearer $TOKEN_A"
auth_row "two valid tokens (two callers)" \
    "Authorization: Bearer $TOKEN_A" "Authorization: Bearer $TOKEN_B"
auth_row "a valid token, then a wrong one" \
    "Authorization: Bearer $TOKEN_A" "Authorization: Bearer nope"
auth_row "a wrong token, then a valid one" \
    "Authorization: Bearer nope" "Authorization: Bearer $TOKEN_A"
auth_row "names in other cases" \
    "authorization: Bearer $TOKEN_A" "AUTHORIZATION: Bearer $TOKEN_B"
auth_row "a valid token, then an empty header" \
    "Authorization: Bearer $TOKEN_A" "Authorization:"
check "none of them reached the upstream" "$(mock_count)" "$m0"

# curl sends both when given a second, as a proxy appending one would.
st=$(post "$SEED" -H "Authorization: Bearer $TOKEN_B")
check "curl with a second Authorization header: 401" \
    "$st $(json_field "$T/resp" code)" "401 unauthenticated"
check "... not forwarded" "$(mock_count)" "$m0"
st=$(post "$SEED")
check "and with one, forwarded" "$st $(mock_count)" "200 $((m0 + 1))"

# A stranger's flood of 401s does not write a log line each: at most
# 100 a second (one loop), the rest counted in one line.
log_settle
before=$(grep -c '"status":401' "$T/gw.log")
urls=$(for i in $(seq 1 400); do printf -- '-o /dev/null %s ' "$GW_URL/management/clients/individuals"; done)
t0=$(date +%s)
# shellcheck disable=SC2086
curl -s -w '%{http_code}\n' -H 'Authorization: Bearer nope' $urls > "$T/flood.codes"
t1=$(date +%s)
check "the flood: 400 answers of 401" "$(grep -c '^401$' "$T/flood.codes")" 400
log_settle
lines=$(( $(grep -c '"status":401' "$T/gw.log") - before ))
echo "# 400 401s within $((t1 - t0 + 1)) s wrote $lines lines"
check_range "401 lines: at most 100 per second of the flood" "$lines" 1 "$((100 * (t1 - t0 + 1)))"
if [ "$lines" -lt 400 ]; then
	# The count comes with the first unauthenticated line of a later
	# second: ask until it is there.
	wait_until sh -c "curl -s -o /dev/null -H 'Authorization: Bearer nope' '$GW_URL/management/clients/individuals'; grep -q 'lines of unauthenticated requests left out' '$T/gw.log'"
	check_match "the lines left out are counted" "$(grep 'left out' "$T/gw.log" | head -n1)" '"msg":"access log: [0-9]+ lines of unauthenticated requests left out"'
fi
check "an authenticated request still logs" "$(post "$SEED")" 200
log_settle
check_match "its line is there" "$(tail -n 3 "$T/gw.log")" '"caller":"[a-z]+","route":"individuals.create","status":200'
finish
