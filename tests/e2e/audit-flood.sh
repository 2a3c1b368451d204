#!/bin/bash
# A flood of unauthenticated requests cannot fill the audit disk: past
# a small allowance of own "reject" records (4 a second, burst 8) the
# refusals are counted into "reject_summary" records, one a second at
# most.  Checks: the log grows by at most 4 KiB per second of flood plus
# a constant; every refusal is in the log exactly once (own records plus
# summary counts = the 401s the flood got); the summaries name the
# source address and the reason; the log verifies; a real caller is
# served throughout; refusals of a known caller stay records of their
# own; the metric counts what was summarized.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
start_gw

scrape() { curl -s "$GW_URL/metrics" > "$T/m.txt"; }
mval() { # mval SERIES: its value, 0 when absent
	awk -v k="$1" 'index($0, k " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }' "$T/m.txt"
}
# unauth_bytes: bytes of the records unauthenticated refusals made.
unauth_bytes() {
	grep -E '"type":"reject_summary"|"type":"reject".*"caller":null' "$T/audit.log" | wc -c | tr -d ' '
}

st=$(post "$SEED")
check "a real caller is served before the flood" "$st" 200
b0=$(unauth_bytes)

# The flood: batches of 400 requests, 50 at a time, without a token and
# with a wrong one in turn, for 3 seconds and until 2000 were sent (at
# most 20 s, on a loaded machine).
url=$GW_URL/management/clients/individuals
: > "$T/flood.cfg"
for i in $(seq 400); do
	printf 'url = "%s"\noutput = "/dev/null"\n' "$url" >> "$T/flood.cfg"
done
: > "$T/flood.codes"
(
	start=$(date +%s%N)
	k=0
	while now=$(date +%s%N); [ "$now" -lt $((start + 3000000000)) ] ||
	    { [ "$(wc -l < "$T/flood.codes")" -lt 2000 ] &&
	    [ "$now" -lt $((start + 20000000000)) ]; }; do
		if [ $((k % 2)) -eq 0 ]; then auth="X-Nothing: 1"
		else auth="Authorization: Bearer not-a-token-$k"; fi
		curl -s --parallel --parallel-max 50 -K "$T/flood.cfg" \
		    -H "$auth" -H 'Content-Type: application/json' \
		    --data-binary @"$SEED" -w '%{http_code}\n' \
		    >> "$T/flood.codes" 2>/dev/null
		k=$((k + 1))
	done
) &
flood=$!
t0=$(date +%s%N)

# A real caller, all through the flood.
served=0; tried=0
while kill -0 "$flood" 2>/dev/null; do
	st=$(post "$SEED")
	tried=$((tried + 1))
	[ "$st" = 200 ] && served=$((served + 1))
	sleep 0.1
done
wait "$flood"
t1=$(date +%s%N)
check "a real caller is served during the flood" "$served/$tried" "$tried/$tried"
[ "$tried" -ge 3 ] && ok "the caller tried $tried times during the flood" ||
    fail "the caller tried only $tried times"
CHECKS=$((CHECKS + 1))

n=$(grep -c '^401$' "$T/flood.codes")
other=$(grep -vc '^401$' "$T/flood.codes")
echo "# flood: $n refusals in $(( (t1 - t0) / 1000000 )) ms"
[ "$n" -ge 1000 ] && ok "the flood made $n requests" || fail "the flood made only $n requests"
CHECKS=$((CHECKS + 1))
check "every flood request got 401" "$other" 0

# A summary is durable within about a second, without a seal or a stop.
wait_for "$T/audit.log" '"type":"reject_summary"' 100
check "a reject_summary record is written during the flood" "$?" 0
own=$(grep -c '"type":"reject".*"caller":null' "$T/audit.log")
scrape
check "cmgate_audit_rejects_summarized_total counts the rest" \
    "$(mval cmgate_audit_rejects_summarized_total)" "$((n - own))"

# Known callers' refusals stay records of their own.
for i in $(seq 20); do CT=text/plain post "$SEED" >/dev/null; done
check "a known caller's refusals are each recorded" \
    "$(grep -c '"type":"reject".*"caller":"onboarding".*"code":"unsupported_media_type"' "$T/audit.log")" 20

stop_gw
check "clean exit" "$GW_RC" 0

# Growth: at most 4 KiB per second of flood, plus a constant (the burst
# of 8 own records, the summary forced out at the stop).
secs=$(( (t1 - t0 + 999999999) / 1000000000 ))
grown=$(( $(unauth_bytes) - b0 ))
limit=$(( 4096 * secs + 8192 ))
echo "# unauthenticated records: $grown bytes for $secs s of flood (limit $limit)"
[ "$grown" -le "$limit" ] && ok "log growth bounded ($grown <= $limit bytes)" ||
    fail "log grew $grown bytes for $secs s of flood (limit $limit)"
CHECKS=$((CHECKS + 1))
summaries=$(grep -c '"type":"reject_summary"' "$T/audit.log")
[ "$summaries" -le $((secs + 2)) ] && ok "$summaries summaries: at most one a second" ||
    fail "$summaries summaries for $secs s"
CHECKS=$((CHECKS + 1))

# Every refusal is in the log exactly once.
own=$(grep -c '"type":"reject".*"caller":null' "$T/audit.log")
summed=$(grep '"type":"reject_summary"' "$T/audit.log" |
    sed 's/.*"to":"[^"]*","count":\([0-9]*\),.*/\1/' | awk '{ s += $1 } END { print s + 0 }')
check "own records + summary counts = the refusals" "$((own + summed))" "$n"
bysrc=$(grep '"type":"reject_summary"' "$T/audit.log" |
    grep -o '"sources":\[{"addr":"127.0.0.1","count":[0-9]*}\],"others":0' |
    sed 's/.*"count":\([0-9]*\).*/\1/' | awk '{ s += $1 } END { print s + 0 }')
check "the summaries name the source address" "$bysrc" "$summed"
byreason=$(grep '"type":"reject_summary"' "$T/audit.log" |
    grep -o '"reasons":\[{"code":"unauthenticated","count":[0-9]*}\]' |
    sed 's/.*"count":\([0-9]*\).*/\1/' | awk '{ s += $1 } END { print s + 0 }')
check "the summaries give the reason" "$byreason" "$summed"
check_match "a summary says when" "$(grep -m1 '"type":"reject_summary"' "$T/audit.log")" \
    '"from":"20[0-9-]+T[0-9:.]+Z","to":"20[0-9-]+T[0-9:.]+Z"'
check_match "own unauthenticated records carry the address" \
    "$(grep -m1 '"type":"reject".*"caller":null' "$T/audit.log")" '"remote_addr":"127.0.0.1"'
check "the last summary is written before the stop record" \
    "$(awk '/"type":"reject_summary"/ { s = NR } /"type":"stop"/ { t = NR } END { print (s < t) }' "$T/audit.log")" 1

"$CMGATE_AUDIT" verify --key-file "$T/audit.key" "$T/audit.log" > "$T/verify.out" 2>&1
check "the log verifies" "$?" 0
"$CMGATE_AUDIT" show --type reject_summary "$T/audit.log" > "$T/show.out" 2>&1
check "cmgate-audit show lists the summaries" "$?/$(grep -c reject_summary "$T/show.out")" "0/$summaries"
finish
