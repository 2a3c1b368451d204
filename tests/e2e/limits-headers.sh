#!/bin/bash
# Request heads at the limits: limits.max_headers and
# limits.max_header_bytes exactly at and one over; heads that arrive in
# pieces (the line ends split between reads) and pipelined requests
# are read right; a caller that pipelines without reading the answers
# cannot make the gateway queue answers without end.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
LIMITS_EXTRA=', "max_headers": 10, "max_header_bytes": 1024' make_config
start_gw

# A GET /healthz head of exactly N bytes with H headers (H >= 1): the
# last header is padded to make up the length.
head_of() { # head_of BYTES HEADERS
	start="GET /healthz HTTP/1.1\r\n"
	i=1; hs=""
	while [ $i -lt "$2" ]; do hs="${hs}X-H$i: v\r\n"; i=$((i + 1)); done
	fixed=$(printf "$start$hs"'X-Pad: \r\n\r\n' | wc -c)
	pad=$(($1 - fixed))
	printf "$start$hs"'X-Pad: %s\r\n\r\n' "$(printf "%${pad}s" '' | tr ' ' p)"
}
head_of 300 10 > "$T/h10"
raw_http "$T/h10"
check "10 headers (max_headers 10)" "$RAW_STATUS" 200
head_of 300 11 > "$T/h11"
raw_http "$T/h11"
check "11 headers" "$RAW_STATUS $(raw_code)" "431 headers_too_large"
head_of 1024 3 > "$T/b1024"
check "head of 1024 bytes built" "$(wc -c < "$T/b1024" | tr -d ' ')" 1024
raw_http "$T/b1024"
check "head of exactly max_header_bytes" "$RAW_STATUS" 200
head_of 1025 3 > "$T/b1025"
raw_http "$T/b1025"
check "head one byte over" "$RAW_STATUS $(raw_code)" "431 headers_too_large"
check_match "431 closes the connection" "$(cat "$T/raw.h")" 'Connection: close'
# curl's own requests carry 6 headers: still fine.
st=$(post "$SEED")
check "a normal request" "$st" 200

# A head in pieces: every line end split across writes, "\r" / "\n"
# apart, LF-only line ends, blank lines before the request.
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
for piece in '\r\n' 'GET /heal' 'thz HTTP/1.1\r' '\n' 'Host: x\r' '\nX-A: 1\n' 'X-B: 2\r\n\r' '\n'; do
	printf "$piece" >&4; sleep 0.05
done
IFS= read -r -t 3 line <&4
check "head in pieces" "${line%?}" "HTTP/1.1 200 OK"
exec 4<&-

# Two requests in one write, then a third split in the middle of its
# head: three answers, in order, on one connection.
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /heal' >&4
sleep 0.2
printf 'thz HTTP/1.1\r\nConnection: close\r\n\r\n' >&4
timeout 5 cat <&4 > "$T/pipe"
exec 4<&-
check "three pipelined answers, in order" \
    "$(grep -ao 'HTTP/1.1 [0-9]*' "$T/pipe" | cut -d' ' -f2 | tr '\n' ' ')" \
    "200 404 200 "

# 20000 pipelined requests whose answers (10 MB) fill the socket
# buffers and pass the 64 KiB the gateway queues for a caller that is
# not reading: it pauses; once the caller reads, it resumes with the
# requests it had already read, and every answer arrives.
yes 'GET /healthz HTTP/1.1' | head -n 19999 | sed 's/$/\r\n\r/' > "$T/pipe"
printf 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n' >> "$T/pipe"
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
cat "$T/pipe" >&4 &
writer=$!
sleep 1
timeout 60 cat <&4 > "$T/pipe.out"
wait $writer
exec 4<&-
check "20000 pipelined answers, all of them, after a pause" \
    "$(grep -ao 'HTTP/1.1 200' "$T/pipe.out" | wc -l | tr -d ' ')" 20000

# A caller that pipelines 40 MB of requests and reads nothing: once
# the socket buffers are full the gateway answers no more, and stops
# reading once 64 KiB of requests wait, so its memory stays flat from
# then on (measured from 1 s in: a sanitizer's allocator holds on to
# what the first thousands of answers freed), and other callers are
# served meanwhile.
rss() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$GW_PID/status"; }
yes 'GET /healthz HTTP/1.1' | head -n 1000000 | sed 's/$/\r\n\r/' |
    head -c 40000000 > "$T/flood"
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
cat "$T/flood" >&4 2>/dev/null &
flood=$!
# Wait until the gateway has backed off (its memory settles once the
# socket buffers are full: two samples half a second apart within
# 2 MB), at most 15 s: on a loaded machine, or under a sanitizer whose
# allocator holds on to what the first thousands of answers freed, that
# takes longer than a second.
r0=$(rss); i=0
while sleep 0.5; r=$(rss); [ $((r - r0)) -gt 2048 ] || [ $((r0 - r)) -gt 2048 ]; do
	r0=$r; i=$((i + 1)); [ $i -lt 30 ] || break
done
r0=$(rss)
sleep 1.5
st=$(curl -s -o /dev/null -w '%{http_code}' -m 3 "$GW_URL/healthz")
check "another caller served during the flood" "$st" 200
r1=$(rss)
kill $flood 2>/dev/null; wait $flood 2>/dev/null
exec 4<&-
echo "# RSS once settled ${r0} kB, 1.5 s later ${r1} kB"
check_range "memory stays flat (growth, kB)" "$((r1 - r0))" -9999 9999
st=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
check "healthy after the flood" "$st" 200
finish
