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
# 100 a second (one loop), the rest counted in "left out" lines, which a
# timer writes when no later request does.  Speed-independent checks:
# every request is either a line or counted, and no second of the log
# holds more than two seconds' allowance (the limiter counts monotonic
# seconds, the log shows wall-clock ones).
N=1000
log_settle
mark=$(wc -l < "$T/gw.log")
urls=$(for i in $(seq 1 $N); do printf -- '-o /dev/null %s ' "$GW_URL/management/clients/individuals"; done)
# shellcheck disable=SC2086
curl -s -w '%{http_code}\n' -H 'Authorization: Bearer nope' $urls > "$T/flood.codes"
check "the flood: $N answers of 401" "$(grep -c '^401$' "$T/flood.codes")" "$N"
flood_lines() { tail -n +"$((mark + 1))" "$T/gw.log" | grep -c '"status":401'; }
left_out() { tail -n +"$((mark + 1))" "$T/gw.log" | sed -n 's/.*access log: \([0-9]*\) lines of unauthenticated.*/\1/p' | awk '{s += $1} END {print s + 0}'; }
accounted() { [ $(( $(flood_lines) + $(left_out) )) -eq "$N" ]; }
wait_until accounted	# the last count comes by the timer
echo "# $N 401s: $(flood_lines) lines written, $(left_out) counted as left out"
check "every 401 is a line or counted" "$(( $(flood_lines) + $(left_out) ))" "$N"
busiest=$(tail -n +"$((mark + 1))" "$T/gw.log" | grep '"status":401' | grep -o '"time":"[^.]*' | sort | uniq -c | sort -rn | head -n1 | awk '{print $1}')
check_range "401 lines in the busiest second of the log" "${busiest:-0}" 1 200
if [ -z "${CMGATE_WRAPPER:-}" ]; then
	# Unslowed, the gateway answers far more than 100 a second.
	check_range "lines left out" "$(left_out)" 1 "$N"
fi
check "an authenticated request still logs" "$(post "$SEED")" 200
log_settle
check_match "its line is there" "$(tail -n 3 "$T/gw.log")" '"caller":"[a-z]+","route":"individuals.create","status":200'
finish
