#!/bin/bash
# Redirects are never followed: an upstream that answers 307 or 302
# with a Location on another host gets its answer relayed, and the key
# never reaches that other host (here: the mock, which logs every
# request it gets).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
command -v perl >/dev/null || { echo "SKIP: no perl"; exit 77; }
start_mock

# A tiny upstream that redirects every request to the mock.
perl -MIO::Socket::INET -e '
	my ($status, $to) = @ARGV;
	my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
	    Listen => 16, ReuseAddr => 1) or die "listen: $!";
	$| = 1;
	print "listening on 127.0.0.1:", $l->sockport, "\n";
	while (my $c = $l->accept) {
		my ($len, $line) = (0, "");
		while (defined($line = <$c>)) {
			$len = $1 if $line =~ /^content-length:\s*(\d+)/i;
			last if $line =~ /^\r?\n$/;
		}
		read($c, my $body, $len) if $len;
		print $c "HTTP/1.1 $status Moved\r\nLocation: $to\r\n",
		    "Content-Type: application/json\r\nContent-Length: 2\r\n",
		    "Connection: close\r\n\r\n{}";
		close $c;
	}' 307 "$MOCK_URL/management/clients/individuals" > "$T/redir.out" 2>&1 &
REDIR_PID=$!
trap 'kill $REDIR_PID 2>/dev/null; cleanup' EXIT
wait_for "$T/redir.out" 'listening on' || { cat "$T/redir.out"; exit 99; }
REDIR_URL=http://127.0.0.1:$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$T/redir.out" | head -n1)

UPSTREAM_URL=$REDIR_URL make_config
start_gw
st=$(post "$SEED")
check "the upstream's 307 is relayed, not followed" "$st" 307
check "the redirect target never saw a request" "$(mock_count)" 0
check_nomatch "no Location relayed" "$(cat "$T/resp.h")" '^Location'
finish
