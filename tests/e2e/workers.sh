#!/bin/bash
# "workers": more event loops, each on its own SO_REUSEPORT socket on
# the same port, all serving; SIGHUP reaches every loop (the new API key
# is used whichever loop a request lands on); SIGTERM drains the
# requests in flight on every loop; more than one loop with the upstream
# budget on is refused (the budget is per loop), at start and on reload.
# Each mechanism has a check that fails without it: the new key on all
# 150 requests, the 60 answered after SIGTERM and the count of a cut
# drain (60, not one loop's share).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

# The mock without a key check: its log shows which x-api-key came.
"$MOCK" -l 127.0.0.1:0 -L "$T/mock.log" >"$T/mock.out" 2>"$T/mock.err" &
MOCK_PID=$!
wait_for "$T/mock.out" "listening on" || { echo "mock did not start"; exit 99; }
MOCK_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$T/mock.out" | head -n1)
MOCK_URL=http://127.0.0.1:$MOCK_PORT
EXTRA=', "workers": 3' make_config
start_gw

listeners() { # LISTEN sockets on the gateway's port
	awk -v p="$(printf ':%04X' "$GW_PORT")" '$4 == "0A" && index($2, p) == length($2) - 4' \
	    /proc/net/tcp | wc -l | tr -d ' '
}
loop_tids() { # the main thread and the workers
	for t in /proc/$GW_PID/task/*; do
		tid=${t##*/}
		case $(cat "$t/comm") in cmgate-w*) echo "$tid" ;; esac
		[ "$tid" = "$GW_PID" ] && echo "$tid"
	done
}
wakeups() { sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "/proc/$GW_PID/task/$1/status"; }
parallel() { # parallel N: N requests at once on N connections; codes in $T/codes
	: > "$T/curl.cfg"
	i=0
	while [ $i -lt "$1" ]; do
		printf 'url = "%s/management/clients/individuals"\noutput = "/dev/null"\n' "$GW_URL" >> "$T/curl.cfg"
		i=$((i + 1))
	done
	curl -s --parallel --parallel-max "$1" --parallel-immediate -K "$T/curl.cfg" \
	    -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
	    --data-binary @"$SEED" -w '%{http_code}\n' > "$T/codes" 2>/dev/null
}
keycount() { grep -c -F "\"x-api-key\":\"$1\"" "$T/mock.log"; }
set_key() {
	( umask 077; printf '%s\n' "$1" > "$T/api-key.new" )
	mv "$T/api-key.new" "$T/api-key"
}
hup() {
	local n i=0
	n=$(grep -c '"msg":"reload' "$T/gw.log")
	kill -HUP "$GW_PID"
	while [ "$(grep -c '"msg":"reload' "$T/gw.log")" -le "$n" ] && [ $i -lt 200 ]; do
		sleep 0.05; i=$((i + 1))
	done
	sleep 0.2	# the workers take it on their next loop pass
}

check "three listening sockets on the one port" "$(listeners)" 3
check "two worker threads" "$(grep -c '^cmgate-w' /proc/$GW_PID/task/*/comm | awk -F: '{ s += $NF } END { print s }')" 2
check_match "startup says how many loops" "$(cat "$T/gw.log")" 'serving from 3 event loops'

# ---- every loop serves ------------------------------------------------
mock_behave '{"default":{"delay_ms":300}}'
for t in $(loop_tids); do echo "$t $(wakeups "$t")"; done > "$T/w0"
parallel 150
check "150 requests at once: all 200" "$(grep -c '^200$' "$T/codes")" 150
busy=0
while read -r t w; do
	[ $(( $(wakeups "$t") - w )) -ge 5 ] && busy=$((busy + 1))
done < "$T/w0"
check "all three loops served requests" "$busy" 3

# ---- SIGHUP reaches every loop ------------------------------------------
KEY2=cm-rotated-key-$$-9876543210
: > "$T/mock.log"
set_key "$KEY2"
hup
parallel 150
check "after the reload: all 200" "$(grep -c '^200$' "$T/codes")" 150
check "after the reload every loop sends the new key" "$(keycount "$KEY2")" 150
check "and none the old one" "$(keycount "$API_KEY")" 0

# A reload that turns the budget on is refused: 3 loops would send 3x.
sed 's/"rate_limit_per_sec": 0/"rate_limit_per_sec": 14/' "$T/cmgate.json" > "$T/c2" && mv "$T/c2" "$T/cmgate.json"
hup
check_match "budget-on reload refused" "$(grep '"msg":"reload' "$T/gw.log" | tail -n1)" 'reload failed.*rate_limit_per_sec'
sed 's/"rate_limit_per_sec": 14/"rate_limit_per_sec": 0/' "$T/cmgate.json" > "$T/c2" && mv "$T/c2" "$T/cmgate.json"

# ---- SIGTERM drains every loop --------------------------------------
mock_behave '{"default":{"delay_ms":1500}}'
parallel 60 &
pp=$!
i=0
while [ $i -lt 100 ] && ! mock_stats | grep -q '"inflight":60'; do sleep 0.05; i=$((i + 1)); done
check "60 requests in flight at the mock" "$(mock_stats | sed -n 's/.*"inflight":\([0-9]*\).*/\1/p')" 60
stop_gw
wait $pp
check "SIGTERM: exit 0" "$GW_RC" 0
check "SIGTERM: all 60 in flight answered 200" "$(grep -c '^200$' "$T/codes")" 60
check_match "SIGTERM: clean shutdown" "$(tail -n1 "$T/gw.log")" 'shutdown: complete'

# A drain cut by shutdown_timeout_ms counts the requests of every loop.
EXTRA=', "workers": 3, "shutdown_timeout_ms": 500' make_config
start_gw
mock_behave '{"default":{"delay_ms":3000}}'
parallel 60 &
pp=$!
i=0
while [ $i -lt 100 ] && ! mock_stats | grep -q '"inflight":60'; do sleep 0.05; i=$((i + 1)); done
stop_gw
wait $pp
check_match "cut drain: all three loops' requests counted" \
    "$(grep 'still in flight' "$T/gw.log")" '"shutdown: 60 requests still in flight after 500 ms'

# ---- more than one loop with the budget on: refused ---------------------
RATE=14 EXTRA=', "workers": 2' make_config
out=$("$CMGATE" -t -c "$T/cmgate.json" 2>&1); rc=$?
check "cmgate -t: workers 2 with the budget on fails" "$rc" 1
check_match "cmgate -t says why" "$out" 'workers: 2 loops need the upstream budget off'
RATE=14 EXTRA=', "workers": 1' make_config
check "one loop with the budget on is fine" "$("$CMGATE" -t -c "$T/cmgate.json" >/dev/null 2>&1; echo $?)" 0
finish
