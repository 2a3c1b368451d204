#!/bin/bash
# Request smuggling past the guard (issue #12, defect 1): the guard and
# evhttp must agree on where every request ends, on every method.
# libevent 2.1.12 reads no body for HEAD and TRACE whatever the
# headers say, so bytes announced as their body would be parsed as the
# next request, one the guard never checked.
#
# Method by method, a request announcing a body (Content-Length) is
# followed by bytes that would be a request of their own if anything
# parsed them as one (a chunked POST with a caller's token, a head with
# too many headers, a folded header), then by a last, honest request
# with "Connection: close".  Every byte the gateway sends back on the
# connection is kept; the answers must be exactly those to the
# requests the guard checked: the outer request and the last one when
# the smuggled bytes were a body evhttp read, the refusal alone (and
# the connection closed) when the method takes no body.  The mock
# CryptoMate never sees the smuggled POST.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
LIMITS_EXTRA=', "request_timeout_ms": 2000' \
    EXTRA=', "metrics": { "listen": "127.0.0.1:0" }' make_config
start_gw
export LC_ALL=C
ROUTE=/management/clients/individuals
MPORT=$(sed -n 's/.*serving \/metrics on [0-9.]*:\([0-9]*\).*/\1/p' "$T/gw.log" | tail -n1)

# conv FILE: send FILE's bytes on a new connection and keep all the
# gateway sends back until it closes the connection (at most 5 s) in
# $T/conv.out.  CONV_CLOSED is yes when it closed.
conv() {
	local rc
	exec 3<>"/dev/tcp/127.0.0.1/${CONV_PORT:-$GW_PORT}" || return 1
	cat "$1" >&3 2>/dev/null
	timeout 5 cat <&3 > "$T/conv.out"
	rc=$?
	exec 3<&-
	CONV_CLOSED=no
	[ $rc -eq 0 ] && CONV_CLOSED=yes
	keep_answer "$T/conv.out"
}
# The status of each answer in $T/conv.out, in order (an answer starts
# right after the body of the one before; no body here says "HTTP/").
statuses() {
	grep -a -o 'HTTP/1\.[01] [0-9][0-9][0-9] ' "$T/conv.out" |
	    cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//'
}

# ---- what is smuggled -------------------------------------------------
# A chunked POST with caller A's token and a valid body: forwarded with
# the API key if evhttp ever parses it.  (The file holds a token: named
# *.secret, tests/lib.sh keeps it out of the outputs secrets.sh scans.)
body=$(tr -d '\n' < "$SEED")
printf 'POST %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n' \
    "$ROUTE" "$TOKEN_A" "${#body}" "$body" > "$T/smuggle-post.secret"
# A head over limits.max_headers (64).
{ printf 'GET /healthz HTTP/1.1\r\nHost: t\r\n'
  for i in $(seq 1 80); do printf 'X-H%d: v\r\n' "$i"; done
  printf '\r\n'; } > "$T/smuggle-headers.secret"
# A folded header.
printf 'GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n' \
    > "$T/smuggle-fold.secret"
LAST='GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'

# outer METHOD TARGET SMUGGLED-FILE: the request, its "body", the last
# request, in one file.
outer() {
	{ printf '%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n' \
	    "$1" "$2" "$(wc -c < "$3")"
	  cat "$3"; printf '%b' "$LAST"; } > "$T/outer.secret"
}

# What each method must get: "STATUSES CLOSED" (the answers, in order,
# and whether the gateway closed the connection).  The methods evhttp
# reads a body for answer the outer request (on the path of
# individuals.create and individuals.list: 401 for a POST or GET without
# a token, 405 for the others) and then the last request;
# HEAD gets 400 and nothing more, TRACE and CONNECT 405, an unknown
# method 400.
want() {
	case $1 in
	POST|GET) echo "401 200 yes" ;;
	PUT|DELETE|OPTIONS|PATCH) echo "405 200 yes" ;;
	HEAD) echo "400 yes" ;;
	TRACE|CONNECT) echo "405 yes" ;;
	*) echo "400 yes" ;;
	esac
}
m0=$(mock_count)
for s in post headers fold; do
	for m in GET HEAD POST PUT DELETE OPTIONS PATCH TRACE CONNECT FOO; do
		target=$ROUTE
		[ "$m" = CONNECT ] && target=127.0.0.1:443
		outer "$m" "$target" "$T/smuggle-$s.secret"
		conv "$T/outer.secret"
		check "$m with a body of a smuggled $s request: answers" \
		    "$(statuses) $CONV_CLOSED" "$(want "$m")"
	done
done
check "the smuggled POST never reached the upstream" "$(mock_count)" "$m0"

# The refusals themselves.
printf 'HEAD /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello' \
    > "$T/r.raw"
conv "$T/r.raw"
check "HEAD with Content-Length 5: 400, closed" "$(statuses) $CONV_CLOSED" \
    "400 yes"
check_nomatch "... the answer to a HEAD has no body" "$(cat "$T/conv.out")" '[{]'
printf 'HEAD /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' \
    > "$T/r.raw"
conv "$T/r.raw"
check "HEAD with Transfer-Encoding: 400, closed" "$(statuses) $CONV_CLOSED" \
    "400 yes"
printf 'HEAD /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n%b' \
    "$LAST" > "$T/r.raw"
conv "$T/r.raw"
check "HEAD with Content-Length 0 is served, and so is the next request" \
    "$(statuses) $CONV_CLOSED" "200 200 yes"
printf 'TRACE / HTTP/1.1\r\nHost: t\r\n\r\n%b' "$LAST" > "$T/r.raw"
conv "$T/r.raw"
check "TRACE without a body: 405 alone, closed" "$(statuses) $CONV_CLOSED" \
    "405 yes"
check_match "... as JSON, method_not_allowed" "$(cat "$T/conv.out")" \
    '"code":"method_not_allowed"'
check_match "... with Allow" "$(cat "$T/conv.out")" 'Allow: GET, HEAD, POST'
printf 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n%b' \
    "$LAST" > "$T/r.raw"
conv "$T/r.raw"
check "CONNECT: 405 alone, closed" "$(statuses) $CONV_CLOSED" "405 yes"
printf 'GET %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n' \
    "$ROUTE" "$(wc -c < "$T/smuggle-fold.secret")" \
    "$(cat "$T/smuggle-fold.secret")" > "$T/r.raw"
conv "$T/r.raw"
check "GET with a chunked body: 411 alone, closed" \
    "$(statuses) $CONV_CLOSED" "411 yes"
printf 'get /healthz HTTP/1.1\r\nHost: t\r\n\r\n' > "$T/r.raw"
conv "$T/r.raw"
check "a method in lower case is unknown: 400" "$(statuses) $CONV_CLOSED" \
    "400 yes"

# A HEAD whose head never ends within limits.max_header_bytes: 431,
# and as a head only.
{ printf 'HEAD /healthz HTTP/1.1\r\nHost: t\r\n'
  for i in $(seq 1 400); do printf 'X-Long-%d: %060d\r\n' "$i" 0; done
  printf '\r\n'; } > "$T/r.raw"
conv "$T/r.raw"
check "HEAD with a head too large: 431" "$(statuses)" "431"
check_nomatch "... without a body" "$(cat "$T/conv.out")" '[{]'

# A refusal pipelined behind a request whose answer waits upstream: the
# guard answers it around evhttp, only after evhttp has answered the
# request before it, so the answers keep their order (the refusal must
# not overtake the slow answer), and nothing after it is served.
m1=$(mock_count)
mock_behave '{"count":1,"delay_ms":800}'
{ printf 'POST %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$ROUTE" "$TOKEN_A" "${#body}" "$body"
  printf 'TRACE / HTTP/1.1\r\nHost: t\r\n\r\n%b' "$LAST"; } \
    > "$T/pipe.secret"
conv "$T/pipe.secret"
check "a slow POST, then a refused TRACE: both answers, in order, closed" \
    "$(statuses) $CONV_CLOSED" "200 405 yes"
check "... the POST was forwarded once" "$(mock_count)" "$((m1 + 1))"

# A caller that goes on sending after its refusal (the rest of an upload
# refused at its head) gets its answer, and is cut off once the guard
# has dropped GUARD_LINGER_MAX (64 KiB) more: it cannot make the
# gateway read 32 MB it will never use.
perl -MIO::Socket::INET -MIO::Select -MTime::HiRes=time -e '
	my ($port, $path) = @ARGV;
	$SIG{PIPE} = "IGNORE";
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die;
	syswrite($s, "POST $path HTTP/1.1\r\nHost: t\r\n" .
	    "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n");
	$s->blocking(0);
	my ($sent, $ans, $eof, $chunk, $end) = (0, "", 0, "a" x 65536,
	    time + 20);
	my $sel = IO::Select->new($s);
	while (time < $end && $sent < 32 << 20) {
		my ($r, $w) = IO::Select->select($eof ? undef : $sel, $sel,
		    undef, 0.1);
		# The answer ends with the gateway shutting its side (an
		# end of stream to read); writing goes on until refused.
		if ($r && @$r && !$eof) {
			my $n = sysread($s, my $b, 65536);
			$eof = 1 if defined $n && $n == 0;
			last if !defined $n && !$!{EAGAIN};
			$ans .= $b if $n;
		}
		if ($w && @$w) {
			my $n = syswrite($s, $chunk);
			if (!defined $n) { last unless $!{EAGAIN}; next; }
			$sent += $n;
		}
	}
	my ($st) = $ans =~ m{^HTTP/1\.1 (\d{3})};
	printf "%s %s\n", $st // "none", $sent < 32 << 20 ? "cut" : "read-all";
' "$GW_PORT" "$ROUTE" > "$T/linger.out"
check "an upload refused at its head: 413, then the connection is cut" \
    "$(cat "$T/linger.out")" "413 cut"

# evhttp must never answer a request itself: in libevent 2.1.12 its own
# error answers under the guard's filter free the connection twice and
# crash the gateway (an HTML 417 to "Expect: foo", then a SEGV when the
# idle timeout fires).  The guard answers what evhttp would refuse.
printf 'POST /healthz HTTP/1.1\r\nHost: t\r\nExpect: foo\r\nContent-Length: 5\r\n\r\nhello' \
    > "$T/r.raw"
conv "$T/r.raw"
check "Expect other than 100-continue: the guard's 417, closed" \
    "$(statuses) $CONV_CLOSED" "417 yes"
check_match "... JSON, expectation_failed" "$(cat "$T/conv.out")" \
    '"code":"expectation_failed"'
# A target evhttp's URI parser refuses (absolute-form, or "//" and a
# host part): evhttp would answer its own HTML 400.
for target in 'http://[::1' '//a:99999/' '//%zz/'; do
	printf 'GET %s HTTP/1.1\r\nHost: t\r\n\r\n' "$target" > "$T/r.raw"
	conv "$T/r.raw"
	check "a target evhttp cannot parse ($target): 400, closed" \
	    "$(statuses) $CONV_CLOSED" "400 yes"
	check_match "... JSON" "$(cat "$T/conv.out")" '"code":"bad_request"'
done
# evhttp strips spaces alone before a header value: to it, a tab before
# 100-continue is another expectation.
printf 'GET /healthz HTTP/1.1\r\nHost: t\r\nExpect:\t100-continue\r\nContent-Length: 1\r\n\r\nx' \
    > "$T/r.raw"
conv "$T/r.raw"
check "Expect: <tab>100-continue: the guard's 417, closed" \
    "$(statuses) $CONV_CLOSED" "417 yes"
check_match "... JSON" "$(cat "$T/conv.out")" '"code":"expectation_failed"'
# The metrics port: a body over its 1 KiB (evhttp's own 413 there was
# the same crash), then a refused TRACE behind it.
printf 'POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n%02000dTRACE / HTTP/1.1\r\nHost: t\r\n\r\n' 0 \
    > "$T/r.raw"
CONV_PORT=$MPORT conv "$T/r.raw"
check "metrics port, a body over 1 KiB: the guard's 413 alone, closed" \
    "$(statuses) $CONV_CLOSED" "413 yes"
check_match "... JSON, payload_too_large" "$(cat "$T/conv.out")" \
    '"code":"payload_too_large"'

# A refusal pipelined behind an answer that ends the connection
# ("Connection: close", or HTTP/1.0 without keep-alive) is not sent:
# nothing may follow such an answer.
printf 'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nTRACE / HTTP/1.1\r\nHost: t\r\n\r\n' \
    > "$T/r.raw"
conv "$T/r.raw"
check "Connection: close, then a refused TRACE: the 200 alone, closed" \
    "$(statuses) $CONV_CLOSED" "200 yes"
printf 'GET /healthz HTTP/1.0\r\nHost: t\r\n\r\nTRACE / HTTP/1.1\r\nHost: t\r\n\r\n' \
    > "$T/r.raw"
conv "$T/r.raw"
check "HTTP/1.0, then a refused TRACE: the 200 alone, closed" \
    "$(statuses) $CONV_CLOSED" "200 yes"
# evhttp takes an absolute-form target for another host as a proxy
# request, and closes after its answer unless Proxy-Connection says
# keep-alive.
printf 'GET http://elsewhere.example/healthz HTTP/1.1\r\nHost: t\r\n\r\nTRACE / HTTP/1.1\r\nHost: t\r\n\r\n' \
    > "$T/r.raw"
conv "$T/r.raw"
check "a proxy request, then a refused TRACE: its answer alone, closed" \
    "$(statuses) $CONV_CLOSED" "404 yes"

# The metrics port's evhttp follows a reload of limits.max_header_bytes
# (its guard reads the new limit at once): a head over the old evhttp
# cap (16 KiB + 1 KiB) and under the new limit is served, not answered
# by evhttp's own HTML.
sed -i 's/"limits": {/"limits": { "max_header_bytes": 65536,/' "$T/cmgate.json"
reload_gw
{ printf 'GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: %020000d\r\nConnection: close\r\n\r\n' 0; } \
    > "$T/r.raw"
CONV_PORT=$MPORT conv "$T/r.raw"
check "metrics port, a 20 KB head after raising the limit by reload: 200" \
    "$(statuses) $CONV_CLOSED" "200 yes"

# The gateway went on serving throughout.
st=$(post "$SEED")
check "a good request is still forwarded" "$st $(mock_count)" "200 $((m0 + 2))"
finish
