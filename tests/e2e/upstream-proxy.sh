#!/bin/bash
# The upstream call goes exactly where upstream.base_url says, never
# through a proxy named by the environment (issue #12, defect 3):
# libcurl would take one from http_proxy, HTTPS_PROXY, ALL_PROXY and
# the rest, and the key and the personal data would go to it.  A second
# mock stands in for the proxy; the gateway is started with every proxy
# variable pointing at it (and with NO_PROXY empty), over plain HTTP
# and over TLS.  Nothing may reach the proxy, and every call must reach
# the real mock.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

PROXY_PID=
trap '[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; cleanup' EXIT

start_proxy() { # a mock that only counts connections: the "proxy"
	"$MOCK" -l 127.0.0.1:0 -L "$T/proxy.log" >"$T/proxy.out" \
	    2>"$T/proxy.err" &
	PROXY_PID=$!
	wait_for "$T/proxy.out" "listening on" || { echo "no proxy"; exit 99; }
	PROXY_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' \
	    "$T/proxy.out")
}
proxy_conns() { # connections the proxy accepted, less our stats calls
	local n c
	c=$(( $(cat "$T/proxy.calls" 2>/dev/null || echo 0) + 1 ))
	echo "$c" > "$T/proxy.calls"
	n=$(curl -s --noproxy '*' "http://127.0.0.1:$PROXY_PORT/_mock/stats" |
	    sed -n 's/.*"connections":\([0-9]*\).*/\1/p')
	echo $((n - c))
}
# start_gw_proxied SCHEME: the gateway with every proxy variable set,
# unset again at once so that the test's own curl goes direct.
start_gw_proxied() {
	local p=$1://127.0.0.1:$PROXY_PORT v
	for v in http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy \
	    ALL_PROXY; do
		export "$v=$p"
	done
	export NO_PROXY= no_proxy=
	start_gw
	unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy \
	    ALL_PROXY NO_PROXY no_proxy
}
mkcert() { # mkcert NAME: a self-signed cert for 127.0.0.1 in $T/NAME.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -days 1 -subj /CN=localhost \
	    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	    -keyout "$T/$1.key" -out "$T/$1.pem" >/dev/null 2>&1
}

start_proxy
check "the proxy stand-in listens and counts" "$(proxy_conns)" 0

# ---- plain HTTP to a loopback base URL, proxies http:// ----
start_mock
make_config
start_gw_proxied http
check "http: the call succeeds" "$(post "$SEED")" 200
check "http: a second call too" "$(post "$SEED")" 200
check "http: both reached the real mock" "$(mock_count)" 2
check "http: nothing reached the proxy" "$(proxy_conns)" 0
check "http: the proxy logged no request" "$(wc -l < "$T/proxy.log" | tr -d ' ')" 0
stop_gw

# ---- the same with socks5h:// proxies (ALL_PROXY's usual form) ----
start_gw_proxied socks5h
check "socks: the call succeeds" "$(post "$SEED")" 200
check "socks: it reached the real mock" "$(mock_count)" 3
check "socks: nothing reached the proxy" "$(proxy_conns)" 0
stop_gw
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=

# ---- TLS to the mock, proxies http:// (curl would CONNECT) ----
mkcert up
rm -f "$T/mock.out"	# the last mock's "listening on" is not this one's
start_mock --tls "$T/up.pem" "$T/up.key"
UPSTREAM_URL=https://127.0.0.1:$MOCK_PORT CA_FILE="\"$T/up.pem\"" make_config
start_gw_proxied http
check "https: the call succeeds" "$(post "$SEED")" 200
check "https: it reached the real mock" "$(mock_count)" 1
check "https: nothing reached the proxy" "$(proxy_conns)" 0
finish
