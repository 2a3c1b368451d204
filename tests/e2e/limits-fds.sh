#!/bin/bash
# Out of file descriptors: a gateway whose open files limit is far
# below limits.max_connections warns at startup; when callers open
# more connections than it has descriptors, the surplus is closed
# (one warning a second at most, not one per attempt), the loop does
# not spin, and once they are gone everyone is served again.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
ticks() { cut -d')' -f2 "/proc/$GW_PID/stat" | awk '{ print $12 + $13 }'; }

: > "$T/gw.log"
( ulimit -n 100; exec ${CMGATE_WRAPPER:-} "$CMGATE" -c "$T/cmgate.json" 2>>"$T/gw.log" ) &
GW_PID=$!
wait_for "$T/gw.log" "listening on" 400 || { cat "$T/gw.log"; exit 99; }
GW_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$T/gw.log" | tail -n1)
GW_URL=http://127.0.0.1:$GW_PORT
# (Under valgrind the limits the gateway sees are valgrind's own.)
[ -n "${CMGATE_WRAPPER:-}" ] ||
    check_match "startup warns about the open files limit" "$(cat "$T/gw.log")" 'open files limit 100 is below'

# 150 connections held open by a helper (the test shell keeps its own
# descriptors free for curl).
( i=0; while [ $i -lt 150 ]; do
	exec {fd}<>"/dev/tcp/127.0.0.1/$GW_PORT" 2>/dev/null || true
	i=$((i + 1))
  done
  echo held > "$T/held"; sleep 30 ) &
holder=$!
wait_for "$T/held" held 200
sleep 0.5
t0=$(ticks); sleep 2; t1=$(ticks)
check_range "no busy loop while out of descriptors (ticks in 2 s)" "$((t1 - t0))" 0 9
n=$(grep -c 'accept: Too many open files' "$T/gw.log")
check_range "a bounded number of warnings" "$n" 1 5
ms0=$(date +%s%N)
st=$(curl -s -o /dev/null -w '%{http_code}' -m 3 "$GW_URL/healthz")
ms=$(( ($(date +%s%N) - ms0) / 1000000 ))
check "a new connection meanwhile gets no answer" "$st" 000
check_range "it is closed at once, not left hanging (ms)" "$ms" 0 999

kill $holder; wait $holder 2>/dev/null
served() { [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$GW_URL/healthz")" = 200 ]; }
wait_until served
check "served again once the connections are gone" "$?" 0
st=$(post "$SEED")
check "and forwards" "$st" 200
finish
