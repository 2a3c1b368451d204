#!/bin/sh
# Fire a burst of requests at the quick-start gateway and show that the
# mock CryptoMate behind it never sees more than the upstream budget in
# any one-second window.  Start the quick start first (in another
# terminal):  scripts/quickstart.sh
#
#   scripts/burst.sh [-n COUNT] [-g GATEWAY_URL] [-m MOCK_URL] [-t TOKEN]
#
#   -n COUNT   requests sent at once (default 100)
#   -g URL     the gateway (default http://127.0.0.1:8080)
#   -m URL     the mock CryptoMate (default http://127.0.0.1:9090)
#   -t TOKEN   caller token (default the quick start's demo token)
#
# It resets the mock's counters (POST /_mock/reset), sends COUNT
# requests in parallel, then prints the answers by status and the
# mock's max_per_second from /_mock/stats next to the budget read from
# the gateway's /healthz.  Exit status 0 when the mock stayed within
# the budget, 1 when not, 2 on a usage or connection error.
set -eu
count=100
gw=http://127.0.0.1:8080
mock=http://127.0.0.1:9090
token=quickstart-demo-token
while getopts n:g:m:t:h opt; do
	case $opt in
	n) count=$OPTARG ;;
	g) gw=$OPTARG ;;
	m) mock=$OPTARG ;;
	t) token=$OPTARG ;;
	*) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
	   exit 2 ;;
	esac
done
case $count in
''|*[!0-9]*|0) echo "burst.sh: -n wants a positive number" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
body=$top/tests/data/seed.json
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cmgate-burst.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! health=$(curl -sf "$gw/healthz"); then
	echo "burst.sh: no gateway at $gw (run scripts/quickstart.sh first)" >&2
	exit 2
fi
if ! curl -sf -X POST "$mock/_mock/reset" >/dev/null; then
	echo "burst.sh: no mock CryptoMate at $mock" >&2
	exit 2
fi
budget=$(printf '%s' "$health" | tr -d ' \n' |
    sed -n 's/.*"upstream_budget":{\([^}]*\).*/\1/p' | sed 's/,"callers":.*//')
enabled=$(printf '%s' "$budget" | sed -n 's/.*"enabled":\([a-z]*\).*/\1/p')
rate=$(printf '%s' "$budget" | sed -n 's/.*"rate_limit_per_sec":\([0-9.]*\).*/\1/p')
wait_ms=$(printf '%s' "$budget" | sed -n 's/.*"max_queue_wait_ms":\([0-9]*\).*/\1/p')

echo "== $count requests at once to $gw"
echo "   budget: enabled=${enabled:-?} rate_limit_per_sec=${rate:-?}" \
    "max_queue_wait_ms=${wait_ms:-?}"
i=0
while [ "$i" -lt "$count" ]; do
	printf 'url = "%s/management/clients/individuals"\noutput = "/dev/null"\n' \
	    "$gw" >> "$tmp/curl.cfg"
	i=$((i + 1))
done
t0=$(date +%s%N)
curl -s --no-progress-meter --parallel --parallel-max "$count" \
    --parallel-immediate -K "$tmp/curl.cfg" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data-binary @"$body" -w '%{http_code}\n' > "$tmp/codes" || true
t1=$(date +%s%N)
echo "   answered in $(( (t1 - t0) / 1000000 )) ms:"
sort "$tmp/codes" | uniq -c | while read -r n code; do
	case $code in
	2*) what="forwarded" ;;
	429) what="turned away by the budget (rate_limited, Retry-After)" ;;
	*) what="" ;;
	esac
	printf '   %6s x %s %s\n' "$n" "$code" "$what"
done

stats=$(curl -s "$mock/_mock/stats")
mps=$(printf '%s' "$stats" | sed -n 's/.*"max_per_second":\([0-9]*\).*/\1/p')
reqs=$(printf '%s' "$stats" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
echo "== the mock CryptoMate ($mock/_mock/stats): $stats"
echo "   requests: $reqs   max_per_second: $mps   budget: ${rate:-?}/s"
if [ "$enabled" != true ]; then
	echo "   the budget is off (upstream.rate_limit_per_sec: 0)"
	exit 0
fi
# rate may be fractional: compare max_per_second with its whole part.
if [ "${mps:-0}" -le "${rate%%.*}" ]; then
	echo "OK: the upstream stayed within the budget"
else
	echo "OVER: the upstream saw $mps in one second, budget $rate/s"
	exit 1
fi
