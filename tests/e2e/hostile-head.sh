#!/bin/bash
# HEAD answers are heads only, and every answer has an X-Request-Id
# (issue #12, defects 2 and 15).
#
# Several HEAD requests and a last GET go out pipelined on one
# keep-alive connection, and the answers are read back in order as a
# client reads them: a HEAD answer ends at its empty line, whatever its
# Content-Length says.  A body after a HEAD answer would be read as the
# start of the next answer.  The same on the metrics.listen port.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
EXTRA=', "metrics": { "listen": "127.0.0.1:0" }' make_config
start_gw
export LC_ALL=C
MPORT=$(sed -n 's/.*serving \/metrics on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$T/gw.log" | head -n1)
ROUTE=/management/clients/individuals

# read_answer HEAD|GET: read one answer from fd 3, as a client would
# after a request of that method.  Sets A_LINE (the status line),
# A_STATUS, A_CL (Content-Length), A_RID (X-Request-Id), A_BODY.
read_answer() {
	local line
	A_LINE= A_STATUS= A_CL= A_RID= A_BODY=
	IFS= read -r -t 5 line <&3 || return 1
	A_LINE=${line%$'\r'}
	A_STATUS=$(printf '%s' "$A_LINE" |
	    sed -n 's/^HTTP\/1\.1 \([0-9][0-9][0-9]\) .*/\1/p')
	while IFS= read -r -t 5 line <&3; do
		line=${line%$'\r'}
		[ -z "$line" ] && break
		case $line in
		[Cc]ontent-[Ll]ength:*)
			A_CL=$(printf '%s' "${line#*:}" | tr -dc 0-9) ;;
		[Xx]-[Rr]equest-[Ii]d:*)
			A_RID=$(printf '%s' "${line#*:}" | tr -d ' ') ;;
		esac
	done
	if [ "$1" = GET ] && [ -n "$A_CL" ] && [ "$A_CL" -gt 0 ]; then
		IFS= read -r -N "$A_CL" -t 5 A_BODY <&3
	fi
	printf '%s\n%s\n' "$A_LINE" "$A_BODY" >> "$T/answers.all"
	return 0
}

# pipeline PORT PATH...: HEAD each PATH, then GET /healthz with
# "Connection: close", all in one write on one connection; checks each
# answer and that nothing follows the last.
pipeline() {
	local port=$1 p want rest; shift
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	{ for p in "$@"; do
		printf 'HEAD %s HTTP/1.1\r\nHost: t\r\n\r\n' "${p#*=}"
	  done
	  printf 'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
	} >&3
	for p in "$@"; do
		want=${p%%=*}
		read_answer HEAD
		check "port $port: HEAD ${p#*=}: the status line" "$A_STATUS" "$want"
		check_match "... an X-Request-Id" "$A_RID" '^[0-9a-f]{32}$'
		check_match "... a Content-Length" "$A_CL" '^[0-9]+$'
	done
	read_answer GET
	check "port $port: the GET after them is read right" "$A_LINE" \
	    "HTTP/1.1 200 OK"
	check_match "... its body is /healthz's" "$A_BODY" '^[{]"status":"ok"'
	check_match "... with an X-Request-Id" "$A_RID" '^[0-9a-f]{32}$'
	rest=$(timeout 5 cat <&3 | wc -c)
	check "... and nothing follows it" "$rest" 0
	exec 3<&-
}

pipeline "$GW_PORT" 200=/healthz 404=/nope 405=$ROUTE 200=/healthz \
    404=/metrics
pipeline "$MPORT" 200=/metrics 200=/healthz 404=/nope

# A HEAD answer's Content-Length is what the GET's would be.
exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT"
printf 'HEAD /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >&3
read_answer HEAD
exec 3<&-
get=$(curl -s -o /dev/null -w '%{size_download}' "$GW_URL/nope")
check "HEAD /nope: Content-Length as the GET's body" "$A_CL" "$get"

# curl reuses the connection after a HEAD; its answers must parse.
out=$(curl -s -I "$GW_URL/healthz" --next -s -o /dev/null \
    -w '%{http_code} %{num_connects}' "$GW_URL/healthz" 2>&1 | tail -n1)
check "curl: HEAD then GET on one connection" "$out" "200 0"

# X-Request-Id on /healthz and /metrics (GET), on both ports.
for u in "$GW_URL/healthz" "http://127.0.0.1:$MPORT/healthz" \
    "http://127.0.0.1:$MPORT/metrics"; do
	curl -s -o /dev/null -D "$T/h" "$u"
	rid=$(tr -d '\r' < "$T/h" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: *//p')
	check_match "GET $u has an X-Request-Id" "$rid" '^[0-9a-f]{32}$'
done
# Two answers, two ids.
a=$(curl -s -D - -o /dev/null "$GW_URL/healthz" | tr -d '\r' |
    sed -n 's/^[Xx]-[Rr]equest-[Ii]d: *//p')
b=$(curl -s -D - -o /dev/null "$GW_URL/healthz" | tr -d '\r' |
    sed -n 's/^[Xx]-[Rr]equest-[Ii]d: *//p')
check_nomatch "each answer has its own id" "$a" "^$b\$"
finish
