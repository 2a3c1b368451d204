#!/bin/sh
# The bad-input table: each hostile input, the exact status and error
# code it must get, and afterwards the gateway still answers /healthz
# and still forwards a good request.  Nothing hostile reaches the
# upstream.
#
# Rows:  jrow STATUS CODE NAME BODY     POST BODY (printf %b) with curl
#        rrow STATUS CODE NAME REQUEST  send REQUEST (printf %b) as is
# STATUS 000 with CODE - means: no answer, the connection is closed.
. "$top_srcdir/tests/lib.sh"
start_mock
LIMITS_EXTRA=', "request_timeout_ms": 1000' make_config
start_gw

jrow() {
	printf '%b' "$4" > "$T/row.json"
	st=$(post "$T/row.json")
	check "$3" "$st $(json_field "$T/resp" code)" "$1 $2"
}
rrow() {
	printf '%b' "$4" > "$T/row.raw"
	raw_http "$T/row.raw" 3
	code=$(raw_code)
	check "$3" "$RAW_STATUS ${code:--}" "$1 $2"
}
AUTH="Authorization: Bearer $TOKEN_A"
P="POST /management/clients/individuals HTTP/1.1\r\nHost: t\r\n$AUTH\r\nContent-Type: application/json"
# A valid body without its closing brace, to append members to.
V='{"first_name":"Maria","last_name":"Barber","email":"m@example.com","birth_date":"1984-11-21","address":{"street_line1":"Florida 9860","city":"Del Viso","postal_code":"1669","state":"ARG-B","country":"ARG"}'
deep() { # deep N: N nested arrays
	printf "%${1}s" '' | tr ' ' '['; printf '1'; printf "%${1}s" '' | tr ' ' ']'
}
many_headers() { # many_headers N
	i=0; while [ $i -lt "$1" ]; do printf 'X-H%d: v\\r\\n' $i; i=$((i + 1)); done
}
long() { printf "%${1}s" '' | tr ' ' "${2:-a}"; }

# ---- framing (the guard, before evhttp) ----------------------------
rrow 400 bad_request "Content-Length and Transfer-Encoding both" \
    "$P\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
rrow 411 length_required "chunked body" \
    "$P\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n"
rrow 411 length_required "transfer-encoding, lower case" \
    "$P\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
rrow 411 length_required "Transfer-Encoding: gzip, chunked" \
    "$P\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
rrow 411 length_required "Transfer-Encoding: identity" \
    "$P\r\nTransfer-Encoding: identity\r\n\r\n{}"
rrow 400 bad_request "Transfer-Encoding: identity with a Content-Length" \
    "$P\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}"
rrow 413 payload_too_large "Content-Length one over the limit, no body sent" \
    "$P\r\nContent-Length: 65537\r\n\r\n"
rrow 413 payload_too_large "Content-Length 10^15" \
    "$P\r\nContent-Length: 1000000000000000\r\n\r\n"
rrow 413 payload_too_large "over the limit with Expect: 100-continue" \
    "$P\r\nExpect: 100-continue\r\nContent-Length: 70000\r\n\r\n"
rrow 400 bad_request "Content-Length of 20 digits" \
    "$P\r\nContent-Length: 99999999999999999999\r\n\r\n"
rrow 400 bad_request "Content-Length -1" "$P\r\nContent-Length: -1\r\n\r\n"
rrow 400 bad_request "Content-Length +2" "$P\r\nContent-Length: +2\r\n\r\n{}"
rrow 400 bad_request "Content-Length 2abc" "$P\r\nContent-Length: 2abc\r\n\r\n{}"
rrow 400 bad_request "Content-Length empty" "$P\r\nContent-Length: \r\n\r\n"
rrow 400 bad_request "Content-Length: 2, 2" "$P\r\nContent-Length: 2, 2\r\n\r\n{}"
rrow 400 bad_request "two different Content-Lengths" \
    "$P\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} "
rrow 400 bad_request "folded header (obs-fold)" \
    "$P\r\nContent-Length: 2\r\nX-A: a\r\n b\r\n\r\n{}"
rrow 400 bad_request "space before the colon" \
    "$P\r\nContent-Length : 2\r\n\r\n{}"
rrow 400 bad_request "header line without a colon" \
    "$P\r\nContent-Length: 2\r\nnocolon\r\n\r\n{}"
rrow 400 bad_request "space inside a header name" \
    "$P\r\nContent-Length: 2\r\nX Y: z\r\n\r\n{}"
rrow 400 bad_request "NUL byte in a header value" \
    "$P\r\nContent-Length: 2\r\nX-A: a\0b\r\n\r\n{}"
rrow 400 bad_request "bare CR in a header value" \
    "$P\r\nContent-Length: 2\r\nX-A: a\rTransfer-Encoding: chunked\r\n\r\n{}"
rrow 400 bad_request "control character in a header value" \
    "$P\r\nContent-Length: 2\r\nX-A: a\001b\r\n\r\n{}"
rrow 400 bad_request "8-bit header name" \
    "$P\r\nContent-Length: 2\r\n\xc3\xa9: z\r\n\r\n{}"
rrow 431 headers_too_large "65 headers (limits.max_headers 64)" \
    "GET /healthz HTTP/1.1\r\n$(many_headers 65)\r\n"
rrow 431 headers_too_large "one 17 KiB header (max_header_bytes 16384)" \
    "GET /healthz HTTP/1.1\r\nX-Big: $(long 17000)\r\n\r\n"
rrow 431 headers_too_large "20 KiB head that never ends" \
    "GET /healthz HTTP/1.1\r\nX-Big: $(long 20000)"
rrow 431 headers_too_large "17 KiB request target" \
    "GET /$(long 17000) HTTP/1.1\r\n\r\n"
rrow 400 bad_request "binary garbage" '\0\001\002\377\r\n\r\n'
rrow 400 bad_request "unknown method" 'BREW /healthz HTTP/1.1\r\n\r\n'
rrow 400 bad_request "lower-case method" 'get /healthz HTTP/1.1\r\n\r\n'
rrow 400 bad_request "HTTP/0.9 request line" 'GET /healthz\r\n\r\n'
rrow 400 bad_request "HTTP/2.0 in an HTTP/1 request line" \
    'GET /healthz HTTP/2.0\r\n\r\n'
rrow 400 bad_request "two spaces in the request line" \
    'GET  /healthz HTTP/1.1\r\n\r\n'
rrow 400 bad_request "space in the request target" \
    'GET /health z HTTP/1.1\r\n\r\n'
rrow 404 not_found "absolute-form target" \
    'GET http://other.example/healthz HTTP/1.1\r\nConnection: close\r\n\r\n'
t0=$(date +%s%N)
rrow 000 - "truncated body: cut at limits.request_timeout_ms" \
    "$P\r\nContent-Length: 100\r\n\r\n{\"first_name\":"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_match "truncated body closed after about 1 s ($ms ms)" "$ms" '^(9[0-9]{2}|1[0-9]{3})$'
rrow 400 invalid_json "POST without a body or a length" \
    "$P\r\nConnection: close\r\n\r\n"
rrow 401 unauthenticated "600-byte bearer token" \
    "POST /management/clients/individuals HTTP/1.1\r\nAuthorization: Bearer $(long 600)\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

# ---- the body (strict JSON, then the rules) ------------------------
jrow 400 invalid_json "empty body" ''
jrow 400 invalid_json "whitespace only" ' \r\n\t '
jrow 400 invalid_json "truncated object" '{"first_name":"Maria"'
jrow 400 invalid_json "truncated in a string" '{"first_name":"Mar'
jrow 400 invalid_json "truncated after a key" '{"first_name"'
jrow 400 invalid_json "truncated in a literal" '{"a":tru'
jrow 400 invalid_json "array instead of an object" '[]'
jrow 400 invalid_json "array holding the object" "[$V}]"
jrow 400 invalid_json "a string" '"Maria"'
jrow 400 invalid_json "a number" '42'
jrow 400 invalid_json "null" 'null'
jrow 400 invalid_json "true" 'true'
jrow 400 invalid_json "trailing garbage" "$V} x"
jrow 400 invalid_json "a second object" "$V}{}"
jrow 400 invalid_json "trailing comma" "$V,}"
jrow 400 invalid_json "comment" "$V /* hi */}"
jrow 400 invalid_json "line comment" "$V // hi\n}"
jrow 400 invalid_json "single-quoted key" "$V,'second_name':\"x\"}"
jrow 400 invalid_json "unquoted key" "$V,second_name:\"x\"}"
jrow 400 invalid_json "duplicate key" "$V,\"first_name\":\"Eve\"}"
jrow 400 invalid_json "duplicate key, one escaped" "$V,\"first\\\\u005fname\":\"Eve\"}"
jrow 400 invalid_json "duplicate key inside address" \
    '{"first_name":"Maria","last_name":"Barber","email":"m@example.com","birth_date":"1984-11-21","address":{"street_line1":"a","city":"b","country":"ARG","city":"c"}}'
jrow 400 invalid_json "invalid UTF-8 byte" "$V,\"second_name\":\"a\377b\"}"
jrow 400 invalid_json "overlong UTF-8 (C0 80)" "$V,\"second_name\":\"a\300\200b\"}"
jrow 400 invalid_json "UTF-8 encoded surrogate (ED A0 80)" "$V,\"second_name\":\"a\355\240\200b\"}"
jrow 400 invalid_json "UTF-8 above U+10FFFF (F4 90 80 80)" "$V,\"second_name\":\"\364\220\200\200\"}"
jrow 400 invalid_json "truncated UTF-8 sequence" "$V,\"second_name\":\"a\303\"}"
jrow 400 invalid_json "lone surrogate escape" "$V,\"second_name\":\"\\\\ud800\"}"
jrow 400 invalid_json "reversed surrogate pair" "$V,\"second_name\":\"\\\\udc00\\\\ud800\"}"
jrow 400 invalid_json "NUL byte in a string" "$V,\"second_name\":\"a\0b\"}"
jrow 400 invalid_json "NUL byte between tokens" "$V,\0\"second_name\":\"a\"}"
jrow 400 invalid_json "escaped NUL (\\\\u0000) in a string" "$V,\"second_name\":\"a\\\\u0000b\"}"
jrow 400 invalid_json "raw control character in a string" "$V,\"second_name\":\"a\001b\"}"
jrow 400 invalid_json "raw newline in a string" "$V,\"second_name\":\"a\nb\"}"
jrow 400 invalid_json "UTF-8 byte order mark" "\357\273\277$V}"
jrow 400 invalid_json "UTF-16 body" '\377\376{\0}\0'
jrow 400 invalid_json "NaN" "$V,\"phone_country_code\":NaN,\"phone_number\":1}"
jrow 400 invalid_json "Infinity" "$V,\"phone_country_code\":Infinity,\"phone_number\":1}"
jrow 400 invalid_json "-Infinity" "$V,\"phone_country_code\":-Infinity,\"phone_number\":1}"
jrow 400 invalid_json "huge exponent (1e999)" "$V,\"phone_country_code\":54,\"phone_number\":1e999}"
jrow 400 invalid_json "huge negative exponent (-1e999)" "$V,\"phone_country_code\":54,\"phone_number\":-1e999}"
jrow 400 invalid_json "integer above int64 (2^63)" "$V,\"phone_country_code\":54,\"phone_number\":9223372036854775808}"
jrow 400 invalid_json "integer below int64 (-2^63-1)" "$V,\"phone_country_code\":54,\"phone_number\":-9223372036854775809}"
jrow 400 invalid_json "integer of 30 digits" "$V,\"phone_country_code\":54,\"phone_number\":123456789012345678901234567890}"
jrow 400 invalid_json "leading zero" "$V,\"phone_country_code\":054,\"phone_number\":1}"
jrow 400 invalid_json "number ending in a dot" "$V,\"phone_country_code\":54.,\"phone_number\":1}"
jrow 400 invalid_json "number starting with a dot" "$V,\"phone_country_code\":.5,\"phone_number\":1}"
jrow 400 invalid_json "number with a plus sign" "$V,\"phone_country_code\":+54,\"phone_number\":1}"
jrow 400 invalid_json "hexadecimal number" "$V,\"phone_country_code\":0x36,\"phone_number\":1}"
jrow 400 invalid_json "nested 20 deep (limits.max_json_depth 16)" "$V,\"second_name\":$(deep 20)}"
jrow 400 invalid_json "nested 30000 deep" "$(deep 30000)"
jrow 422 validation_failed "float where an integer belongs (54.0)" "$V,\"phone_country_code\":54.0,\"phone_number\":1168860622}"
jrow 422 validation_failed "float phone number (1.1e9)" "$V,\"phone_country_code\":54,\"phone_number\":1.1e9}"
jrow 422 validation_failed "finite huge double (1e300)" "$V,\"phone_country_code\":54,\"phone_number\":1e300}"
jrow 422 validation_failed "underflowing double (1e-999)" "$V,\"phone_country_code\":54,\"phone_number\":1e-999}"
jrow 422 validation_failed "integer at int64 max" "$V,\"phone_country_code\":54,\"phone_number\":9223372036854775807}"
jrow 422 validation_failed "negative phone number" "$V,\"phone_country_code\":54,\"phone_number\":-1168860622}"
jrow 422 validation_failed "string where a number belongs" "$V,\"phone_country_code\":\"fifty\",\"phone_number\":1}"
jrow 422 validation_failed "number where a string belongs" '{"first_name":7,"last_name":"B","email":"m@example.com","birth_date":"1984-11-21","address":{"street_line1":"a","city":"b","postal_code":"1","state":"B","country":"ARG"}}'
jrow 422 validation_failed "object where a string belongs" '{"first_name":{},"last_name":"B","email":"m@example.com","birth_date":"1984-11-21","address":{"street_line1":"a","city":"b","postal_code":"1","state":"B","country":"ARG"}}'
jrow 422 validation_failed "array where a string belongs" '{"first_name":["Maria"],"last_name":"B","email":"m@example.com","birth_date":"1984-11-21","address":{"street_line1":"a","city":"b","postal_code":"1","state":"B","country":"ARG"}}'
jrow 422 validation_failed "null required field" '{"first_name":null,"last_name":"B","email":"m@example.com","birth_date":"1984-11-21","address":{"street_line1":"a","city":"b","postal_code":"1","state":"B","country":"ARG"}}'
jrow 422 validation_failed "address as an array" '{"first_name":"A","last_name":"B","email":"m@example.com","birth_date":"1984-11-21","address":[]}'
jrow 422 validation_failed "address as a string" '{"first_name":"A","last_name":"B","email":"m@example.com","birth_date":"1984-11-21","address":"Florida 9860"}'
jrow 422 validation_failed "empty object" '{}'
jrow 422 validation_failed "2000-character name" "$V,\"second_name\":\"$(long 2000)\"}"
jrow 422 validation_failed "60 KB string" "$V,\"second_name\":\"$(long 60000)\"}"
jrow 422 validation_failed "10 KB key" "$V,\"$(long 10000 k)\":1}"
jrow 422 validation_failed "C1 control character (U+0085) in a name" "$V,\"second_name\":\"a\302\205b\"}"
jrow 422 validation_failed "unknown field" "$V,\"admin\":true}"
keys=$(i=0; while [ $i -lt 1000 ]; do printf ',"k%d":1' $i; i=$((i + 1)); done)
jrow 422 validation_failed "1000 unknown fields" "$V$keys}"
n=$(grep -o '"field":' "$T/resp" | wc -l)
check_match "the error list is capped ($n entries)" "$n" '^(3[0-3])$'

# Every answer above was the gateway's own, a JSON error body.
st=$(post_json "$V,\"second_name\":\"a\\u0000b\"}")
check "error answer carries X-Request-Id" \
    "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"
check_nomatch "error body does not echo the input" "$(cat "$T/resp")" 'Maria'
check "no hostile input reached the upstream" "$(mock_count)" 0

# ---- and afterwards --------------------------------------------------
st=$(curl -s -o "$T/h" -w '%{http_code}' "$GW_URL/healthz")
check "healthz after the table" "$st" 200
check_match "healthz says ok" "$(cat "$T/h")" '"status":"ok"'
st=$(post "$SEED")
check "a good request after the table" "$st" 200
check "the good request reached the upstream" "$(mock_count)" 1
# Only an allowlist of the upstream's headers comes back: the mock
# also sends Set-Cookie and Server.
names=$(tr -d '\r' < "$T/resp.h" | sed -n 's/^\([A-Za-z0-9-]*\):.*/\1/p' | tr 'A-Z' 'a-z' | sort | tr '\n' ' ')
check_nomatch "no Set-Cookie or Server relayed ($names)" "$names" 'set-cookie|server'
check_match "only allowlisted headers" "$names" '^((content-type|content-length|date|x-request-id|x-trace-id|retry-after|connection|idempotency-[a-z-]*) )*$'
check "gateway process still alive" "$(kill -0 "$GW_PID" 2>/dev/null && echo yes)" yes
finish
