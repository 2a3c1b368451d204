#!/bin/bash
# GET /metrics: Prometheus text format (ops-promtext.awk, itself shown
# to reject broken input first), counters that move as requests are
# sent, the gauges of work in flight, bounded labels, no secrets, and
# the optional separate metrics.listen port.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
PROMCHECK="$top_srcdir/tests/e2e/ops-promtext.awk"

promcheck() { awk -f "$PROMCHECK" "$1"; }

# ---- the checker catches what it must --------------------------------
rejects() { # rejects DESCRIPTION TEXT
	printf '%s\n' "$2" > "$T/bad.txt"
	promcheck "$T/bad.txt" > "$T/bad.out"
	check "checker rejects $1" "$?" 1
}
H='# HELP cmgate_x x
# TYPE cmgate_x gauge'
rejects "a counter without _total" '# HELP cmgate_x x
# TYPE cmgate_x counter
cmgate_x 1'
rejects "a sample without TYPE" 'cmgate_y 1'
rejects "a value that is no number" "$H
cmgate_x one"
rejects "an unescaped quote" "$H
cmgate_x{a=\"b\"c\"} 1"
rejects "a bad label name" "$H
cmgate_x{1a=\"b\"} 1"
rejects "a series given twice" "$H
cmgate_x{a=\"b\"} 1
cmgate_x{a=\"b\"} 2"
rejects "a name without the prefix" '# HELP other_x x
# TYPE other_x gauge
other_x 1'
rejects "milliseconds in a name" '# HELP cmgate_wait_ms x
# TYPE cmgate_wait_ms gauge
cmgate_wait_ms 1'
rejects "a +Inf bucket unlike _count" '# HELP cmgate_h_seconds h
# TYPE cmgate_h_seconds histogram
cmgate_h_seconds_bucket{le="1"} 1
cmgate_h_seconds_bucket{le="+Inf"} 2
cmgate_h_seconds_sum 0.5
cmgate_h_seconds_count 3'
rejects "buckets that decrease" '# HELP cmgate_h_seconds h
# TYPE cmgate_h_seconds histogram
cmgate_h_seconds_bucket{le="1"} 2
cmgate_h_seconds_bucket{le="+Inf"} 1
cmgate_h_seconds_sum 0.5
cmgate_h_seconds_count 1'
rejects "families interleaved" "$H
# HELP cmgate_z_total z
# TYPE cmgate_z_total counter
cmgate_x{a=\"1\"} 1
cmgate_z_total 1
cmgate_x{a=\"2\"} 1"
printf '%s\n' "$H" 'cmgate_x{a="q\"\\n"} 1.5e3' > "$T/good.txt"
promcheck "$T/good.txt" > "$T/good.out"
check "checker accepts a small valid text" "$?" 0

# ---- the gateway's own text --------------------------------------------
start_mock
make_config
start_gw

scrape() { # scrape [BASE_URL]: the status; the text in $T/m.txt
	curl -s -D "$T/m.h" -o "$T/m.txt" -w '%{http_code}' "${1:-$GW_URL}/metrics"
}
mval() { # mval SERIES [FILE]: its value, 0 when absent
	awk -v k="$1" 'index($0, k " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }' "${2:-$T/m.txt}"
}
delta() { # delta SERIES: value in m.txt minus value in m0.txt
	echo $(( $(mval "$1") - $(mval "$1" "$T/m0.txt") ))
}

check "GET /metrics" "$(scrape)" 200
check_match "Prometheus content type" \
    "$(tr -d '\r' < "$T/m.h" | grep -i '^Content-Type:')" \
    'text/plain; version=0.0.4'
out=$(promcheck "$T/m.txt"); rc=$?
echo "# $out" | head -n 5
check "the text parses (fresh gateway)" "$rc" 0
check_match "build info" "$(grep '^cmgate_build_info' "$T/m.txt")" \
    '^cmgate_build_info\{version="[0-9][^"]*",libevent="[^"]+",libcurl="[^"]+",json_c="[^"]+",openssl="[^"]+"\} 1$'
for f in cmgate_requests_total cmgate_validation_failures_total \
    cmgate_upstream_request_duration_seconds cmgate_upstream_queue_wait_seconds \
    cmgate_upstream_queue_depth cmgate_upstream_inflight_requests \
    cmgate_open_connections cmgate_audit_write_duration_seconds \
    cmgate_audit_fsync_duration_seconds cmgate_request_duration_seconds; do
	check "family $f declared" "$(grep -c "^# TYPE $f " "$T/m.txt")" 1
done
undocumented=
for f in $(sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' "$T/m.txt"); do
	grep -q -w -- "$f" "$top_srcdir/man/cmgate.8" || undocumented="$undocumented $f"
done
check "every metric family is documented in cmgate(8)" "$undocumented" ""
cp "$T/m.txt" "$T/m0.txt"

# Traffic: 3 created, 1 invalid (email + two unknown fields), 1 with an
# unknown token, 1 on no route, 1 with the wrong method.
for i in 1 2 3; do post "$SEED" > /dev/null; done
st=$(post_json '{"first_name":"Ana","last_name":"Lopez","email":"nope","birth_date":"1990-01-01","address":{"street_line1":"x 1","city":"y","country":"ARG"},"label_bomb_1":1,"label_bomb_2":2}')
check "invalid body" "$st" 422
st=$(TOKEN=not-a-caller post "$SEED")
check "unknown token" "$st" 401
check "no route" "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/nope")" 404
check "wrong method" "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH "$GW_URL/management/clients/individuals")" 405

check "GET /metrics again" "$(scrape)" 200
out=$(promcheck "$T/m.txt"); rc=$?
check "the text parses (after traffic)" "$rc" 0
[ $rc -eq 0 ] || echo "$out" | head -n 20
R='route="individuals.create"'
check "200s counted" "$(delta "cmgate_requests_total{$R,caller=\"onboarding\",code=\"200\"}")" 3
check "422 counted" "$(delta "cmgate_requests_total{$R,caller=\"onboarding\",code=\"422\"}")" 1
check "401 counted as caller unknown" "$(delta "cmgate_requests_total{$R,caller=\"unknown\",code=\"401\"}")" 1
check "405 counted as route other" "$(delta 'cmgate_requests_total{route="other",caller="unknown",code="405"}')" 1
check "404 counted as route other" "$(delta 'cmgate_requests_total{route="other",caller="unknown",code="404"}')" 1
check "field email counted" "$(delta 'cmgate_validation_failures_total{field="email"}')" 1
check "unknown fields counted under _unknown" "$(delta 'cmgate_validation_failures_total{field="_unknown"}')" 2
check "a caller's field names never become labels" "$(grep -c label_bomb "$T/m.txt")" 0
check "upstream latency observed 3 times" "$(delta "cmgate_upstream_request_duration_seconds_count{$R}")" 3
check "upstream 200s counted" "$(delta 'cmgate_upstream_responses_total{code="200"}')" 3
check "queue wait observed 3 times" "$(delta cmgate_upstream_queue_wait_seconds_count)" 3
check "request duration observed 5 times" "$(delta "cmgate_request_duration_seconds_count{$R}")" 5
n=$(delta cmgate_audit_records_total)
check "audit records counted (request+outcome x3, 2 rejects)" "$([ "$n" -ge 8 ] && echo yes || echo "no ($n)")" yes
n=$(delta cmgate_audit_fsync_duration_seconds_count)
check "audit fsyncs observed" "$([ "$n" -ge 1 ] && echo yes || echo "no ($n)")" yes
check "audit healthy" "$(mval cmgate_audit_healthy)" 1
check "idempotency store healthy" "$(mval cmgate_idempotency_healthy)" 1

# Secrets and bodies never reach the metrics.
check "no API key in the metrics" "$(grep -c -F "$API_KEY" "$T/m.txt")" 0
check "no caller token in the metrics" "$(grep -c -e "$TOKEN_A" -e "$TOKEN_B" "$T/m.txt")" 0
check "no body value in the metrics" "$(grep -c -e mjuliabarber -e Barber "$T/m.txt")" 0

# Work in flight shows in the gauges.
mock_behave '{"count":1,"delay_ms":1500}'
post "$SEED" > /dev/null &
bg=$!
i=0
while [ $i -lt 100 ] && ! mock_stats | grep -q '"inflight":1'; do sleep 0.05; i=$((i + 1)); done
scrape > /dev/null
check "upstream in flight" "$(mval cmgate_upstream_inflight_requests)" 1
check "requests in flight" "$(mval cmgate_requests_in_flight)" 1
n=$(mval cmgate_open_connections)
check "open connections (the waiting caller and the scrape)" "$([ "$n" -ge 2 ] && echo yes || echo "no ($n)")" yes
wait $bg
i=0
while scrape > /dev/null && [ "$(mval cmgate_open_connections)" != 1 ] && [ $i -lt 40 ]; do
	sleep 0.05; i=$((i + 1))
done
check "open connections back to the scrape's own" "$(mval cmgate_open_connections)" 1
check "upstream in flight back to 0" "$(mval cmgate_upstream_inflight_requests)" 0
check "requests in flight back to 0" "$(mval cmgate_requests_in_flight)" 0

check "HEAD /metrics" "$(curl -s -I -o /dev/null -w '%{http_code}' "$GW_URL/metrics")" 200
check "POST /metrics refused" "$(curl -s -o /dev/null -w '%{http_code}' -d x "$GW_URL/metrics")" 405
stop_gw
check "clean exit" "$GW_RC" 0

# ---- metrics.listen: a separate port, and none on the callers' one ----
EXTRA=', "metrics": { "listen": "127.0.0.1:0" }' make_config
start_gw
MPORT=$(sed -n 's/.*serving \/metrics on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/gw.log" | head -n1)
check_match "metrics port logged" "$MPORT" '^[0-9]+$'
MURL=http://127.0.0.1:$MPORT
check "callers' port has no /metrics" "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/metrics")" 404
post "$SEED" > /dev/null
n0=$(mock_count)
check "GET /metrics on the metrics port" "$(scrape "$MURL")" 200
promcheck "$T/m.txt" > /dev/null
check "its text parses" "$?" 0
check "it counts the callers' port" "$(mval "cmgate_requests_total{$R,caller=\"onboarding\",code=\"200\"}")" 1
check "/healthz on the metrics port" "$(curl -s -o /dev/null -w '%{http_code}' "$MURL/healthz")" 200
check "nothing else on the metrics port" "$(curl -s -o /dev/null -w '%{http_code}' -d @"$SEED" "$MURL/management/clients/individuals")" 404
check "the API was not reached from the metrics port" "$(mock_count)" "$n0"
stop_gw
check "clean exit" "$GW_RC" 0
finish
