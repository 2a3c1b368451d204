#!/bin/bash
# CryptoMate's answers are not trusted further than HTTP allows (issue
# #12, defect 11), and the caller's Idempotency-Key is not forwarded
# (defect 15):
# - Retry-After is clamped: above 600 s (however many digits) it is
#   600, and anything but delta-seconds is 1; the clamped value is what
#   the caller is told and what pauses the budget.
# - Only a final status in 200..599 is relayed: a 1xx the exchange ends
#   on, or a code outside 100..599, is a JSON 502 upstream_unavailable.
#   The mock's --raw answers with bytes no well-behaved server sends.
# - The mock never sees an Idempotency-Key header.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
start_gw

# ---- Retry-After, budget off: what the caller is told ----
ra() { # ra VALUE EXPECTED
	local v
	v=$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')
	mock_behave "{\"status\":429,\"retry_after\":\"$v\"}"
	check "Retry-After '$1': CryptoMate's 429 relayed" "$(post "$SEED")" 429
	check "Retry-After '$1' is relayed as $2" "$(resp_header Retry-After)" "$2"
}
ra 9223372036854775807 600
ra 9223372036854775808 600
ra 99999999999999999999999999999999999999 600
ra 601 600
ra 600 600
ra 599 599
ra 0 0
ra 30 30
ra '  45 ' 45
ra -1 1
ra -9223372036854775808 1
ra +5 1
ra 1.5 1
ra 0x10 1
ra abc 1
ra '5 6' 1
ra 'Wed, 21 Oct 2015 07:28:00 GMT' 1
ra '' 1

# ---- Retry-After, budget on: the clamped value pauses the budget ----
stop_gw
RATE=10 MAX_QUEUE_WAIT=2000 make_config
start_gw
mock_behave '{"status":429,"retry_after":"9223372036854775807"}'
check "budget on: the 429 is relayed (600 s > the 2 s wait)" "$(post "$SEED")" 429
check "budget on: with Retry-After 600" "$(resp_header Retry-After)" 600
check_match "budget on: the budget paused for 600 s" "$(cat "$T/gw.log")" \
    'paused for 600000 ms'
n=$(mock_count)
check "budget on: the next request is held back" "$(post "$SEED")" 429
check "budget on: by the gateway (rate_limited)" "$(json_field "$T/resp" code)" rate_limited
ra_next=$(resp_header Retry-After)
check_match "budget on: its Retry-After is the pause left (${ra_next} s)" \
    "$ra_next" '^(59[0-9]|600)$'
check "budget on: it never reached CryptoMate" "$(mock_count)" "$n"
stop_gw
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=

# ---- statuses: only 200..599 is an answer ----
raw() { # raw NAME 'PRINTF-FORMAT': the mock's next answer, verbatim
	printf "$2" > "$T/raw.$1"
	[ -n "$MOCK_PID" ] && { kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; }
	# The last mock's "listening on" must not pass for the new one's.
	rm -f "$T/mock.out"
	start_mock ${PORT:+-l 127.0.0.1:$PORT} --raw "$T/raw.$1"
	PORT=$MOCK_PORT
}
bad_status() { # bad_status NAME 'PRINTF-FORMAT'
	raw "$1" "$2"
	check "$1: 502" "$(post "$SEED")" 502
	check "$1: upstream_unavailable" "$(json_field "$T/resp" code)" upstream_unavailable
	check_match "$1: a JSON error" "$(resp_header Content-Type)" '^application/json'
	check "$1: it did reach the mock" "$(mock_count)" 1
}
raw control-201 'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"id":"c1"}'
make_config
start_gw
check "control: a raw 201 is relayed" "$(post "$SEED")" 201
check "control: with its body" "$(cat "$T/resp")" '{"id":"c1"}'
raw control-599 'HTTP/1.1 599 Odd\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
check "control: 599 is still an answer" "$(post "$SEED")" 599

bad_status 100-then-close 'HTTP/1.1 100 Continue\r\n\r\n'
bad_status 102-then-close 'HTTP/1.1 102 Processing\r\n\r\n'
bad_status 103-then-close 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'
bad_status 101-switching 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: evil\r\n\r\n{}'
bad_status 199-with-body 'HTTP/1.1 199 Odd\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
bad_status 600 'HTTP/1.1 600 Odd\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
bad_status 999 'HTTP/1.1 999 Odd\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
bad_status 099 'HTTP/1.1 099 Odd\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
bad_status 000 'HTTP/1.1 000 Odd\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
bad_status 1000 'HTTP/1.1 1000 Odd\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
bad_status no-status 'HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'
bad_status http-0.9 '{"id":"c1"}'
log_settle
check_match "the gateway says why" "$(cat "$T/gw.log")" \
    'not a final status'
stop_gw
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=

# ---- Idempotency-Key stays at the gateway ----
rm -f "$T/mock.out"	# the last mock's "listening on" is not this one's
start_mock
make_config
start_gw
check "a keyed request" "$(post "$SEED" -H 'Idempotency-Key: onb-7f3e0c9a')" 200
check "and a keyed retry (replayed)" "$(post "$SEED" -H 'Idempotency-Key: onb-7f3e0c9a')" 200
check "CryptoMate saw one request" "$(mock_count)" 1
check_match "it carried X-Request-Id (the log shows headers)" \
    "$(cat "$T/mock.log")" '"x-request-id":'
check_nomatch "it carried no Idempotency-Key" "$(cat "$T/mock.log")" \
    '"idempotency-key"'
check_nomatch "nor the key's value anywhere" "$(cat "$T/mock.log")" \
    'onb-7f3e0c9a'
finish
