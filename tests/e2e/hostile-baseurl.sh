#!/bin/bash
# upstream.base_url lookalikes (issue #12, defect 4): the URL is read
# with libcurl's URL parser; userinfo, a query or a fragment is refused
# whatever the scheme, and plain http:// is taken only for a loopback
# host: a dotted-quad 127.0.0.0/8 literal, [::1] or "localhost" (any
# case).  Every other form below is refused with the same message by
# `cmgate -t` and by the start, and the accepted forms start and serve.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
cp "$T/cmgate.json" "$T/good.json"

with_url() { # with_url URL: writes $T/b.json
	sed "s|\"base_url\": \"[^\"]*\"|\"base_url\": \"$1\"|" "$T/good.json" \
	    > "$T/b.json"
}

# refused URL REGEX: -t and the start both exit 1 naming the key, and
# the start never listens.
refused() {
	local out rc sout src
	with_url "$1"
	out=$("$CMGATE" -t -c "$T/b.json" 2>&1); rc=$?
	check "-t refuses $1" "$rc" 1
	check_match "-t names why for $1" "$out" "upstream.base_url: $2"
	sout=$(timeout 10 "$CMGATE" -c "$T/b.json" 2>&1); src=$?
	check "the start refuses $1" "$src" 1
	check_nomatch "the start never listened for $1" "$sout" "listening on"
	check "-t and the start say the same for $1" \
	    "$(printf '%s\n' "$sout" | grep -c "upstream.base_url: $2")" 1
}
clear='plain http:// is refused for a non-loopback host'
userinfo='must not hold a user name or password'

# The issue's two: a lookalike name and userinfo in front of 127.0.0.1.
refused "http://127.0.0.1.example.com:$MOCK_PORT" "$clear"
refused "http://127.0.0.1@example.com" "$userinfo"
refused "http://127.0.0.1:$MOCK_PORT@example.com" "$userinfo"
refused "http://example.com@127.0.0.1:$MOCK_PORT" "$userinfo"
refused "http://u:p@127.0.0.1:$MOCK_PORT" "$userinfo"
refused "https://u@api.cryptomate.me" "$userinfo"
refused "https://u:p@api.cryptomate.me" "$userinfo"
refused "https://:@api.cryptomate.me" "$userinfo"
# Not loopback, whatever they resolve to.
for u in 0.0.0.0 localhost.localdomain localhost. 127.0.0.1. 127.1 \
    127.0.1 0x7f000001 0x7f.0.0.1 2130706433 0177.0.0.1 127.0.0.01 \
    '[::ffff:127.0.0.1]' '[0:0:0:0:0:0:0:1]' '[::]' 127.0.0.256 \
    '%31%32%37.0.0.1' localhost.example.com; do
	refused "http://$u:$MOCK_PORT" "$clear"
done
refused "http://127.0.0.1:$MOCK_PORT#@example.com" 'must not hold a query'
refused "http://127.0.0.1:$MOCK_PORT?x=1" 'must not hold a query'
refused "ftp://127.0.0.1:$MOCK_PORT" 'must start with https://'
refused "HTTP://127.0.0.1:$MOCK_PORT" 'must start with https://'
refused "http://127.0.0.1 .example.com" 'is not a valid URL'
# Dot segments: curl folds them away, so the path called would not be
# the one written.
for p in /api/../admin /.. /a/./b /a/%2e%2e/b /a/.%2E /%2e/x /a/..; do
	refused "https://api.cryptomate.me$p" 'must not hold . or .. path'
done

# Accepted by -t: the loopback forms over http, anything over https
# (TLS verifies the name; a lookalike is only a name there).
for u in "http://127.0.0.1:$MOCK_PORT" "http://127.255.254.1:1" \
    "http://localhost:1" "http://LOCALHOST:1" "http://[::1]:1" \
    "https://api.cryptomate.me/" "https://127.0.0.1.example.com" \
    "https://api.cryptomate.me/v1/.../x" "https://h/a.b/..c/.d"; do
	with_url "$u"
	out=$("$CMGATE" -t -c "$T/b.json" 2>&1)
	check "-t accepts $u" "$?" 0
done

# And the start serves through an accepted form ("localhost").
with_url "http://LocalHost:$MOCK_PORT/"
cp "$T/b.json" "$T/cmgate.json"
start_gw
check "a localhost base URL serves" "$(post "$SEED")" 200
check "and the call reached the mock" "$(mock_count)" 1
finish
