#!/bin/bash
# SIGTERM/SIGINT: stop accepting at once, let the requests in flight
# finish with their answers, write the audit log's closing record, exit
# 0; shutdown_timeout_ms caps the wait for a request that takes longer.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
start_gw

call() { # call N: one request; its status goes to $T/code.N
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
	    -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
	    --data-binary @"$SEED" "$GW_URL/management/clients/individuals" > "$T/code.$1"
}
wait_inflight() { # wait_inflight N: until the mock holds N requests
	local i=0
	while [ $i -lt 200 ] && ! mock_stats | grep -q "\"inflight\":$1[,}]"; do
		sleep 0.05; i=$((i + 1))
	done
}
last_types() { # the types of the audit log's last two records
	tail -n 2 "$T/audit.log" | sed 's/.*"type":"\([a-z]*\)".*/\1/' | tr '\n' ' '
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- SIGTERM with 5 requests in flight ---------------------------------
# Each held 4 s at the mock: long enough for all five to be seen in
# flight together on a busy machine.
mock_behave '{"count":5,"delay_ms":4000}'
pids=
for i in 1 2 3 4 5; do call $i & pids="$pids $!"; done
wait_inflight 5
check "5 requests in flight upstream" "$(mock_stats | grep -o '"inflight":[0-9]*')" '"inflight":5'
kill -TERM "$GW_PID"
wait_for "$T/gw.log" 'shutdown: signal 15' || fail "no shutdown line"
check_match "drain logged with the count" "$(grep 'shutdown: signal' "$T/gw.log")" 'draining 5 requests'
curl -s -o /dev/null --max-time 2 "$GW_URL/healthz"; rc=$?
check "no new connection accepted while draining (curl exit 7)" "$rc" 7
for p in $pids; do wait "$p"; done
for i in 1 2 3 4 5; do
	check "request $i in flight finished" "$(cat "$T/code.$i")" 200
done
wait "$GW_PID"; GW_RC=$?; GW_PID=
check "exit code after the drain" "$GW_RC" 0
check "upstream served the 5" "$(mock_count)" 5
check "5 outcomes recorded" "$(grep -c '"type":"outcome"' "$T/audit.log")" 5
check "audit log ends with its closing record" "$(last_types)" "stop seal "
"$CMGATE_AUDIT" verify --key-file "$T/audit.key" "$T/audit.log" > "$T/verify.out" 2>&1
check "audit log verifies" "$?" 0
check_match "shutdown completes" "$(tail -n 1 "$T/gw.log")" 'shutdown: complete'

# ---- SIGINT, idle -------------------------------------------------------
start_gw
kill -INT "$GW_PID"
wait "$GW_PID"; GW_RC=$?; GW_PID=
check "SIGINT exit code" "$GW_RC" 0
check_match "SIGINT logged" "$(grep 'shutdown: signal' "$T/gw.log")" 'signal 2,'
check "closing record after SIGINT" "$(last_types)" "stop seal "

# ---- shutdown_timeout_ms caps the wait ---------------------------------
EXTRA=', "shutdown_timeout_ms": 300' make_config
start_gw
mock_behave '{"count":1,"delay_ms":5000}'
call slow &
slow=$!
wait_inflight 1
t0=$(now_ms)
kill -TERM "$GW_PID"
wait "$GW_PID"; GW_RC=$?; GW_PID=
ms=$(( $(now_ms) - t0 ))
echo "# exit after $ms ms with a 5 s request in flight"
check "exit code after the timeout" "$GW_RC" 0
check "exited after shutdown_timeout_ms, not the request" \
    "$([ "$ms" -ge 250 ] && [ "$ms" -lt 2500 ] && echo yes || echo "no ($ms ms)")" yes
check_match "the cut-off is logged" "$(grep 'still in flight' "$T/gw.log")" '1 requests still in flight after 300 ms'
check "the abandoned request is named" "$(grep -c 'abandoned at exit' "$T/gw.log")" 1
wait $slow
check_nomatch "the cut-off request got no 200" "$(cat "$T/code.slow")" '^200$'
check "closing record after the timeout" "$(last_types)" "stop seal "
finish
