#!/bin/bash
# Slow callers: one sending its head a byte a second, one sending its
# body a byte a second, and one sending nothing at all are each cut off
# (limits.request_timeout_ms, limits.idle_timeout_ms), while other
# callers are served the whole time, and 40 slow callers at once do
# not slow anyone else down either.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
LIMITS_EXTRA=', "request_timeout_ms": 2000, "idle_timeout_ms": 3000' make_config
start_gw

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# trickle FD TEXT: write TEXT to FD one byte a second, until it fails.
trickle() {
	printf '%s' "$2" | fold -w1 | while IFS= read -r ch; do
		[ -n "$ch" ] || ch=' '
		printf '%s' "$ch" >&"$1" 2>/dev/null || exit 0
		sleep 1
	done
}
# closed_after FD OUT: wait (at most 8 s) until the gateway closes FD;
# prints the milliseconds since $t0, and leaves what came in OUT.
closed_after() {
	timeout 8 cat <&"$1" > "$2"
	echo $(( $(now_ms) - t0 ))
}

# 1. The head a byte a second.
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
t0=$(now_ms)
trickle 4 "GET /healthz HTTP/1.1 X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" &
tr1=$!
# Meanwhile other callers are answered at once.
fast=0
for i in 1 2 3 4 5; do
	ms0=$(now_ms)
	st=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$GW_URL/healthz")
	[ "$st" = 200 ] && [ $(( $(now_ms) - ms0 )) -lt 500 ] && fast=$((fast + 1))
	sleep 0.2
done
check "5 other callers served promptly during the slow head" "$fast" 5
ms=$(closed_after 4 "$T/slow1")
kill $tr1 2>/dev/null; wait $tr1 2>/dev/null
exec 4<&-
check_range "slow head cut at request_timeout_ms 2000 (ms)" "$ms" 1900 3499
check "no answer to the slow head" "$(wc -c < "$T/slow1" | tr -d ' ')" 0

# 2. A complete head, then the body a byte a second.
len=$(wc -c < "$SEED" | tr -d ' ')
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
t0=$(now_ms)
printf 'POST /management/clients/individuals HTTP/1.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n' "$TOKEN_A" "$len" >&4
trickle 4 "$(cat "$SEED")" &
tr2=$!
st=$(post "$SEED")
check "another caller forwarded during the slow body" "$st" 200
ms=$(closed_after 4 "$T/slow2")
kill $tr2 2>/dev/null; wait $tr2 2>/dev/null
exec 4<&-
check_range "slow body cut at request_timeout_ms (ms)" "$ms" 1900 3499
check "the slow body never reached the upstream" "$(mock_count)" 1

# 3. A connection that sends nothing, and one left idle after a request.
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
exec 5<>"/dev/tcp/127.0.0.1/$GW_PORT"
t0=$(now_ms)
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&5
IFS= read -r -t 2 line <&5
check "keep-alive request answered" "${line%?}" "HTTP/1.1 200 OK"
ms=$(closed_after 4 "$T/idle")
exec 4<&-
check_range "silent connection closed at idle_timeout_ms 3000 (ms)" "$ms" 2900 4499
ms=$(closed_after 5 "$T/idle2")
exec 5<&-
check_range "idle keep-alive connection closed too (ms)" "$ms" 2900 4499

# 4. Forty slow callers at once, each a byte every 0.2 s: everyone
# else is served as fast as before, and the forty are cut off.
pids=""
i=0
while [ $i -lt 40 ]; do
	( exec 6<>"/dev/tcp/127.0.0.1/$GW_PORT" || exit 0
	  printf 'GET /healthz HTTP/1.1\r\nX-Slow: ' | fold -w1 |
	  while IFS= read -r ch; do printf '%s' "$ch" >&6 2>/dev/null || exit 0; sleep 0.2; done
	  printf 'b' | while :; do printf b >&6 2>/dev/null || exit 0; sleep 0.2; done ) &
	pids="$pids $!"
	i=$((i + 1))
done
sleep 0.5
t0=$(now_ms)
ok200=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	st=$(post "$SEED")
	[ "$st" = 200 ] && ok200=$((ok200 + 1))
done
ms=$(( $(now_ms) - t0 ))
check "10 requests served among 40 slow callers" "$ok200" 10
# Quickly by the gateway's own clock (total_ms of each); the time the
# shell took (its 40 writers spawn 200 sleeps a second) only has to
# stay below what a loop held by the slow callers would take.
log_settle
slowest=$(grep '"msg":"request"' "$T/gw.log" | tail -n 10 |
    sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p' | sort -n | tail -n1)
check_range "and quickly (slowest total_ms of the 10)" "$slowest" 0 500
check_range "and quickly (ms for 10, from the shell)" "$ms" 0 9999
# All forty are gone by request_timeout_ms (plus slack): wait up to
# 3.5 s for their writers to find the connection closed.
alive() { left=0; for p in $pids; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done; [ $left -eq 0 ]; }
wait_until -n 70 alive
check "the 40 slow callers were cut off" "$left" 0
for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
st=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
check "healthy afterwards" "$st" 200
finish
