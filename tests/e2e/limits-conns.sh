#!/bin/bash
# limits.max_connections: the connection over the cap gets a JSON 503
# and is closed, surplus connections that send nothing do not linger,
# and closed connections give their place back.
# upstream.max_inflight: past it, a request is turned away at once and
# never reaches the upstream; once the transfers in flight end,
# requests go through again.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
TIMEOUT_MS=3000 LIMITS_EXTRA=', "max_connections": 4, "request_timeout_ms": 1500, "idle_timeout_ms": 20000' \
    EXTRA=', "workers": 1, "metrics": { "listen": "127.0.0.1:0" }' make_config
sed -i 's/"max_queued": \([0-9]*\)/"max_queued": \1, "max_inflight": 2/' "$T/cmgate.json"
start_gw
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
MPORT=$(sed -n 's/.*serving \/metrics on [0-9.]*:\([0-9]*\).*/\1/p' "$T/gw.log" | tail -n1)
MURL=http://127.0.0.1:$MPORT

# Four idle connections fill the cap.
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
exec 5<>"/dev/tcp/127.0.0.1/$GW_PORT"
exec 6<>"/dev/tcp/127.0.0.1/$GW_PORT"
exec 7<>"/dev/tcp/127.0.0.1/$GW_PORT"
wait_metric "$MURL" cmgate_open_connections 4
check "the gateway holds the four (cmgate_open_connections)" \
    "$(metric_value "$MURL" cmgate_open_connections)" 4
st=$(curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' "$GW_URL/healthz")
check "fifth connection" "$st" 503
check "its code" "$(json_field "$T/resp" code)" too_many_connections
check_match "it is closed" "$(cat "$T/resp.h")" 'Connection: close'
check "request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"

# A HEAD over the cap gets its 503 without a body, however its method
# arrives: after blank lines, and split across two writes (the guard
# waits for the whole method before it answers).
perl -MIO::Socket::INET -MSocket=IPPROTO_TCP,TCP_NODELAY -MTime::HiRes=sleep -e '
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or die;
	setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
	syswrite($s, "\r\nHE"); sleep 0.3;
	syswrite($s, "AD /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
	local $/; alarm 5; print scalar <$s>;
' "$GW_PORT" > "$T/head.out"
check "a split HEAD over the cap: 503" \
    "$(head -n1 "$T/head.out" | cut -d' ' -f2)" 503
check_nomatch "... without a body" "$(cat "$T/head.out")" '[{]'

# A surplus connection that sends nothing is closed after
# request_timeout_ms, not kept until idle_timeout_ms.
t0=$(now_ms)
exec 8<>"/dev/tcp/127.0.0.1/$GW_PORT"
timeout 5 cat <&8 > /dev/null
ms=$(( $(now_ms) - t0 ))
exec 8<&-
check_range "silent surplus connection closed after ~1.5 s (ms)" "$ms" 1400 2999

# The four inside are still served.
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&4
IFS= read -r -t 2 line <&4
check "a connection inside the cap is served" "${line%?}" "HTTP/1.1 200 OK"

# The metrics port counts its connections apart: the callers' cap is
# full, /metrics is still served.
st=$(curl -s -o /dev/null -w '%{http_code}' "$MURL/metrics")
check "metrics port served while the callers' port is full" "$st" 200
# It has a cap of its own (64 per loop): the 65th gets a JSON 503 and
# is closed; closing one gives the place back.
mfds=
for i in $(seq 1 64); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$MPORT" && mfds="$mfds $fd"
done
# No gauge counts the metrics port's connections: ask until the loop
# has taken all 64 (each ask before that is served and closed).
metrics_full() {
	[ "$(curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' \
	    "$MURL/metrics")" = 503 ]
}
wait_until metrics_full
check "65th metrics connection" "$(head -n1 "$T/resp.h" | cut -d' ' -f2)" 503
check "its code" "$(json_field "$T/resp" code)" too_many_connections
check_match "it is closed" "$(cat "$T/resp.h")" 'Connection: close'
for fd in $mfds; do exec {fd}<&-; done
metrics_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$MURL/metrics")" = 200 ]; }
wait_until metrics_ok
check "metrics served again once places are free" "$?" 0

# Closing two gives their places back.
exec 4<&- 5<&-
wait_metric "$MURL" cmgate_open_connections 2
check "two places given back (cmgate_open_connections)" \
    "$(metric_value "$MURL" cmgate_open_connections)" 2
st=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
check "served once places are free" "$st" 200
exec 6<&- 7<&-
wait_metric "$MURL" cmgate_open_connections 0
# Many connections one after the other: the count goes down each time.
n=0
for i in $(seq 1 30); do
	st=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
	[ "$st" = 200 ] && n=$((n + 1))
done
check "30 connections in a row under a cap of 4" "$n" 30
# Connections cut by the request deadline give their places back too.
for fd in 4 5 6 7; do eval "exec $fd<>/dev/tcp/127.0.0.1/$GW_PORT"; printf 'GET /' >&$fd; done
wait_metric "$MURL" cmgate_open_connections 4
# request_timeout_ms (1.5 s) cuts them; the gateway closes its ends.
wait_metric "$MURL" cmgate_open_connections 0
check "the four slow connections were cut" \
    "$(metric_value "$MURL" cmgate_open_connections)" 0
for fd in 4 5 6 7; do eval "exec $fd<&-"; done
st=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
check "served after four slow connections were cut" "$st" 200

# upstream.max_inflight 2: two hung transfers fill it.
mock_behave '{"count":2,"hang":true}'
post "$SEED" -m 10 > "$T/st1" &
p1=$!
post "$SEED" -m 10 > "$T/st2" &
p2=$!
wait_until eval 'mock_stats | grep -q "\"inflight\":2"'
check_match "two transfers in flight" "$(mock_stats)" '"inflight":2'
t0=$(now_ms)
st=$(curl -s -o "$T/resp" -w '%{http_code}' -m 10 -H "Authorization: Bearer $TOKEN_A" \
    -H 'Content-Type: application/json' --data-binary @"$SEED" \
    "$GW_URL/management/clients/individuals")
ms=$(( $(now_ms) - t0 ))
code=$(json_field "$T/resp" code)
# src/upstream.c refuses with EBUSY; request.c answers 503 upstream_busy.
check "third request turned away ($st $code)" "$st $code" "503 upstream_busy"
check_range "at once (ms)" "$ms" 0 999
check "the upstream saw only two" "$(mock_count)" 2
check_match "healthz shows 2 in flight" "$(curl -s "$GW_URL/healthz")" '"upstream_inflight":2'
wait $p1 $p2
check "the hung ones time out (504)" "$(cat "$T/st1") $(cat "$T/st2")" "504 504"
st=$(post "$SEED")
check "forwarded again once they ended" "$st" 200
finish
