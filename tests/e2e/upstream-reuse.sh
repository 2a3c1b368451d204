#!/bin/bash
# Upstream connections (src/upstream.c): kept alive and reused from one
# request to the next, over plain HTTP and over TLS verified against
# upstream.ca_file; a kept connection the server closes while idle is
# dropped quietly (no busy loop) and replaced by a new one; a
# certificate that does not verify gets nothing sent.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

mkcert() { # mkcert NAME: a self-signed cert for 127.0.0.1 in $T/NAME.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -days 1 -subj /CN=localhost \
	    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	    -keyout "$T/$1.key" -out "$T/$1.pem" >/dev/null 2>&1
}
conns() { # upstream connections the mock accepted (its own stats call too)
	curl -s ${CACERT:+--cacert "$CACERT"} "$MOCK_BASE/_mock/stats" |
	    sed -n 's/.*"connections":\([0-9]*\).*/\1/p'
}
ticks() { cut -d')' -f2 "/proc/$GW_PID/stat" | awk '{ print $12 + $13 }'; }
posts() { # posts N: N requests one after the other; prints the codes
	i=0
	while [ $i -lt "$1" ]; do post "$SEED"; echo; i=$((i + 1)); done |
	    sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }'
}
idle_round() { # after the mock (-t 1) closes the kept connection
	sleep 2
	t0=$(ticks); sleep 1; t1=$(ticks)
	check_range "$1: idle, server closed the connection: no busy loop (ticks in 1 s)" \
	    "$((t1 - t0))" 0 5
	check "$1: the next request works" "$(posts 1)" "200:1 "
}

# ---- plain HTTP ----
start_mock -t 1
MOCK_BASE=$MOCK_URL
make_config
start_gw
check "http: 20 requests in a row all 200" "$(posts 20)" "200:20 "
check "http: one upstream connection for all of them" "$(conns)" 2
idle_round http
check "http: a new connection replaced the closed one" "$(conns)" 4
stop_gw
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=

# ---- TLS, verified against ca_file ----
mkcert up
mkcert other
start_mock -t 1 --tls "$T/up.pem" "$T/up.key"
MOCK_BASE=https://127.0.0.1:$MOCK_PORT
CACERT=$T/up.pem
UPSTREAM_URL=$MOCK_BASE CA_FILE="\"$T/up.pem\"" make_config
start_gw
check "https: 20 requests in a row all 200" "$(posts 20)" "200:20 "
check "https: one upstream connection (one handshake) for all" "$(conns)" 2
idle_round https
check "https: a new connection replaced the closed one" "$(conns)" 4
stop_gw

# A certificate the configured CA does not vouch for: nothing is sent.
before=$(mock_count)
UPSTREAM_URL=$MOCK_BASE CA_FILE="\"$T/other.pem\"" make_config
start_gw
check "https, wrong CA: 502" "$(post "$SEED")" 502
check "https, wrong CA: upstream_unavailable" "$(json_field "$T/resp" code)" upstream_unavailable
check "https, wrong CA: the mock saw no request" "$(mock_count)" "$before"
finish
