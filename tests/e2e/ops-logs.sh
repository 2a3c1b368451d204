#!/bin/bash
# Logs: one JSON line per request with every field an on-call engineer
# needs and never a body or a secret; startup, reload and shutdown
# lines; log.level honoured at start and on reload.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
start_gw

field() { # field LINE KEY: the value of "KEY": (string unquoted)
	printf '%s' "$1" | grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.a-z]*\)" | head -n1 |
	    sed "s/^\"$2\"://; s/^\"//; s/\"$//"
}
reqline() { # reqline REQUEST_ID: its access-log line
	log_settle
	grep "\"request_id\":\"$1\"" "$T/gw.log" | grep '"msg":"request"'
}

check_match "startup line" "$(grep '"msg":"cmgate' "$T/gw.log")" 'starting: upstream http://127.0.0.1:[0-9]+, 2 callers, audit '
check_match "listening line" "$(grep '"msg":"listening on' "$T/gw.log")" 'listening on 127.0.0.1:[0-9]+'

# A forwarded request.
check "a created client" "$(post "$SEED")" 200
rid=$(resp_header X-Request-Id)
line=$(reqline "$rid")
check "one access line for it" "$(reqline "$rid" | wc -l | tr -d ' ')" 1
check_match "a JSON object on one line" "$line" '^\{"time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z","level":"info",.*\}$'
check "caller" "$(field "$line" caller)" onboarding
check "route" "$(field "$line" route)" "individuals.create"
check "status" "$(field "$line" status)" 200
check "upstream status" "$(field "$line" upstream_status)" 200
check_match "upstream latency" "$(field "$line" upstream_latency_ms)" '^[0-9]+\.[0-9]{3}$'
check_match "total latency" "$(field "$line" total_ms)" '^[0-9]+\.[0-9]{3}$'
check "bytes in" "$(field "$line" bytes_in)" "$(wc -c < "$SEED" | tr -d ' ')"
check "bytes out" "$(field "$line" bytes_out)" "$(wc -c < "$T/resp" | tr -d ' ')"
check_match "queue wait" "$(field "$line" queue_ms)" '^[0-9]+\.[0-9]{3}$'

# A rejected one: no caller, the gateway's code, no upstream.
check "an unknown token" "$(TOKEN=nobody-$$ post "$SEED")" 401
line=$(reqline "$(resp_header X-Request-Id)")
check "unauthenticated caller is null" "$(field "$line" caller)" null
check "its code" "$(field "$line" code)" unauthenticated
check "no upstream status" "$(field "$line" upstream_status)" 0
check "bytes out of the gateway's own error" "$(field "$line" bytes_out)" "$(wc -c < "$T/resp" | tr -d ' ')"
check "a field error" "$(post_json '{"first_name":"Zyx-secret-name","email":"also-secret@nowhere"}')" 422

# Never a body, never a secret.
check "no body value in the log" "$(grep -c -e mjuliabarber -e 'Florida 9860' -e Zyx-secret-name -e also-secret "$T/gw.log")" 0
check "no API key in the log" "$(grep -c -F "$API_KEY" "$T/gw.log")" 0
check "no token in the log" "$(grep -c -F -e "$TOKEN_A" -e "nobody-$$" "$T/gw.log")" 0
check "every line is one JSON object" "$(grep -c -v '^{"time":"[^"]*","level":"[a-z]*",.*}$' "$T/gw.log")" 0

# log.level on reload: warn drops info lines (the access log too), and
# an error still shows.
sed 's/"validation": {/"log": { "level": "warn" },\n  "validation": {/' "$T/cmgate.json" > "$T/warn.json"
cp "$T/cmgate.json" "$T/info.json"
kill -HUP "$GW_PID"
wait_for "$T/gw.log" '"msg":"reload: config' || fail "no reload line"
check_match "the reload line says what was loaded" "$(grep '"msg":"reload: config' "$T/gw.log")" 'config .*cmgate.json loaded \(2 callers\)'
cp "$T/warn.json" "$T/cmgate.json"
kill -HUP "$GW_PID"
# At warn the reload line itself is not logged: wait for the counter.
i=0
until curl -s "$GW_URL/metrics" | grep -q '^cmgate_config_reloads_total{result="success"} 2$' || [ $i -ge 100 ]; do
	sleep 0.05; i=$((i + 1))
done
n=$(wc -l < "$T/gw.log")
check "a request at level warn" "$(post "$SEED")" 200
check "no info line at level warn" "$(tail -n +$((n + 1)) "$T/gw.log" | grep -c '"level":"info"')" 0
echo '{ broken' > "$T/cmgate.json"
kill -HUP "$GW_PID"
wait_for "$T/gw.log" '"level":"error","msg":"reload failed' || fail "no error line at level warn"
check_match "a failed reload is an error line naming the cause" "$(grep 'reload failed' "$T/gw.log")" 'keeping the running config: .*cmgate.json: invalid JSON'
cp "$T/info.json" "$T/cmgate.json"
stop_gw
check "clean exit" "$GW_RC" 0

# log.level at startup, and the shutdown lines at info.
cp "$T/warn.json" "$T/cmgate.json"
: > "$T/gw.log"
"$CMGATE" -c "$T/cmgate.json" 2>>"$T/gw.log" &
GW_PID=$!
# At warn it does not log "listening on": wait for its listening socket.
gw_listens() {
	local inodes
	inodes=$(ls -l "/proc/$GW_PID/fd" 2>/dev/null |
	    sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ')
	[ -n "$inodes" ] && awk -v l="$inodes" '
	    BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1 }
	    $4 == "0A" && ($10 in w) { f = 1 } END { exit !f }' /proc/net/tcp
}
wait_until gw_listens || fail "no listening socket at level warn"
check "still running at level warn" "$(kill -0 "$GW_PID" && echo yes)" yes
check "nothing below warn at startup" "$(grep -c '"level":"info"' "$T/gw.log")" 0
stop_gw
check "clean exit at level warn" "$GW_RC" 0
cp "$T/info.json" "$T/cmgate.json"
start_gw
stop_gw
check_match "shutdown line" "$(grep 'shutdown: signal' "$T/gw.log")" 'shutdown: signal 15, draining 0 requests in flight'
check_match "last line" "$(tail -n1 "$T/gw.log")" '"msg":"shutdown: complete"'
finish
