#!/bin/bash
# Answers at the limits: the upstream's answer is bounded by
# upstream.max_response_bytes (one byte over is a 502, never buffered
# whole), and a large answer reaches a slow reader whole, with
# "Connection: close" too (the gateway must not shut the socket while
# part of the answer still waits to be written), however long it takes
# as long as it keeps reading; a caller that stops reading is cut off
# after limits.idle_timeout_ms.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
command -v perl >/dev/null || { echo "SKIP: no perl"; exit 77; }

# An upstream that answers each request with $T/size bytes of 'a' (the
# mock takes rule bodies up to 1 MB only).
printf 0 > "$T/size"
perl -MIO::Socket::INET -e '
	my $sizefile = $ARGV[0];
	my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
	    Listen => 16, ReuseAddr => 1) or die "listen: $!";
	$| = 1;
	print "listening on 127.0.0.1:", $l->sockport, "\n";
	while (my $c = $l->accept) {
		while (1) {
			my ($len, $line) = (0, "");
			while (defined($line = <$c>)) {
				$len = $1 if $line =~ /^content-length:\s*(\d+)/i;
				last if $line =~ /^\r?\n$/;
			}
			last unless defined $line;
			read($c, my $body, $len) if $len;
			open(my $f, "<", $sizefile); my $n = <$f>; close $f;
			print $c "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n",
			    "Content-Length: $n\r\n\r\n", "a" x $n;
		}
		close $c;
	}' "$T/size" > "$T/big.out" 2>&1 &
BIG_PID=$!
trap 'kill $BIG_PID 2>/dev/null; cleanup' EXIT
wait_for "$T/big.out" 'listening on' || { cat "$T/big.out"; exit 99; }
MOCK_URL=http://127.0.0.1:$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$T/big.out" | head -n1)
LIMITS_EXTRA=', "idle_timeout_ms": 2000' make_config
sed -i 's/"max_queued": \([0-9]*\)/"max_queued": \1, "max_response_bytes": 8000100/' "$T/cmgate.json"
start_gw
size() { printf %s "$1" > "$T/size"; }

size 8000000
st=$(post "$SEED" --limit-rate 4M -H 'Connection: close')
check "8 MB answer with Connection: close to a slow reader" "$st" 200
check "it arrives whole" "$(wc -c < "$T/resp" | tr -d ' ')" 8000000
st=$(post "$SEED" --limit-rate 4M)
check "8 MB answer, keep-alive" "$st $(wc -c < "$T/resp" | tr -d ' ')" "200 8000000"

# A slow reader that keeps reading, 64 KiB every 20 ms: about 2.5 s,
# past idle_timeout_ms 2 s, and it gets everything.
t0=$(date +%s%N)
got=$(perl -MIO::Socket::INET -e '
	my ($port, $token, $seed) = @ARGV;
	open(my $f, "<", $seed) or die; local $/; my $body = <$f>; close $f;
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die;
	print $s "POST /management/clients/individuals HTTP/1.1\r\n",
	    "Authorization: Bearer $token\r\nContent-Type: application/json\r\n",
	    "Content-Length: ", length($body), "\r\n\r\n", $body;
	my ($all, $buf) = ("", "");
	while (sysread($s, $buf, 65536)) {
		$all .= $buf;
		last if $all =~ /\r\n\r\n/ && length($all) - $+[0] >= 8000000;
		select(undef, undef, undef, 0.02);
	}
	$all =~ /\r\n\r\n/ or die;
	print length($all) - $+[0], "\n";' "$GW_PORT" "$TOKEN_A" "$SEED")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a slow but steady reader gets it all ($ms ms)" "$got" 8000000
check_range "and it was slow (more than 2 s, ms)" "$ms" 2000 99999
# A reader that stops: cut off after idle_timeout_ms; all it gets is
# what the kernel buffers held.
len=$(wc -c < "$SEED" | tr -d ' ')
exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT"
printf 'POST /management/clients/individuals HTTP/1.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n' "$TOKEN_A" "$len" >&4
cat "$SEED" >&4
sleep 3
got=$(timeout 5 cat <&4 | wc -c | tr -d ' ')
exec 4<&-
check_range "a reader that stops is cut off (bytes of 8000000)" "$got" 0 7999999
st=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
check "healthy afterwards" "$st" 200

size 8000100
st=$(post "$SEED")
check "an answer of exactly max_response_bytes" "$st $(wc -c < "$T/resp" | tr -d ' ')" "200 8000100"
size 8000101
st=$(post "$SEED")
check "one byte over max_response_bytes" "$st $(json_field "$T/resp" code)" "502 upstream_unavailable"
check_match "says why" "$(cat "$T/resp")" 'too large'
size 10
st=$(post "$SEED")
check "next answer fine" "$st $(cat "$T/resp")" "200 aaaaaaaaaa"
finish
