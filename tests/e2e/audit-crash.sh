#!/bin/bash
# kill -9 under load, 20 times over one audit log.  Afterwards: the
# gateway recovers the tail, the log verifies, every request the upstream
# saw has a durable "request" record, and every 2xx a caller got has an
# "outcome" record.  When each kill comes is random: the run prints its
# SEED, and SEED=N bash tests/e2e/audit-crash.sh replays it.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
use_seed
start_mock -d 100
make_config

cfg=$T/curl.cfg
: > "$cfg"
i=0
while [ $i -lt 40 ]; do
	printf 'url = "URL/management/clients/individuals"\noutput = "/dev/null"\n' >> "$cfg"
	i=$((i + 1))
done
: > "$T/answers"
round=0
while [ $round -lt 20 ]; do
	start_gw
	sed "s#URL#$GW_URL#" "$cfg" > "$T/run.cfg"
	curl -s --parallel --parallel-max 20 -K "$T/run.cfg" \
	    -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
	    --data-binary @"$SEED" -w '%{http_code} %header{x-request-id}\n' \
	    >> "$T/answers" 2>/dev/null &
	cpid=$!
	# A random moment to crash at; a gateway under a tool (valgrind)
	# is ten times slower, so it gets a second more to answer some.
	r=$((RANDOM % 3 + 1))
	if [ -n "${CMGATE_WRAPPER:-}" ]; then sleep "1.$r"; else sleep "0.$r"; fi
	kill -9 "$GW_PID"; wait "$GW_PID" 2>/dev/null; GW_PID=
	wait $cpid 2>/dev/null
	round=$((round + 1))
done
start_gw
st=$(post "$SEED")
check "gateway serves after 20 crashes" "$st" 200
stop_gw
check "clean exit after recovery" "$GW_RC" 0
# The live file and any rotated ones (audit.log.<seq>), not .state/.broken-*.
LOGS=$(ls "$T"/audit.log "$T"/audit.log.[0-9]* 2>/dev/null)

"$CMGATE_AUDIT" verify --key-file "$T/audit.key" $LOGS > "$T/verify.out" 2>&1
rc=$?
check "verify passes after recovery" "$rc" 0
tail -n 3 "$T/verify.out"

"$CMGATE_AUDIT" show --type request $LOGS | grep -o '"request_id":"[0-9a-f]*"' | cut -d'"' -f4 | sort -u > "$T/req_ids"
"$CMGATE_AUDIT" show --type outcome $LOGS | grep -o '"request_id":"[0-9a-f]*"' | cut -d'"' -f4 | sort -u > "$T/out_ids"
grep -o '"x-request-id":"[0-9a-f]*"' "$T/mock.log" | cut -d'"' -f4 | sort -u > "$T/up_ids"
grep '^2[0-9][0-9] ' "$T/answers" | cut -d' ' -f2 | tr -d '\r' | sort -u > "$T/ok_ids"
echo "# upstream saw $(wc -l < "$T/up_ids"), callers got $(wc -l < "$T/ok_ids") 2xx"
check_range "some requests went through" "$(wc -l < "$T/ok_ids")" 1 100000
check "every upstream request has a request record" "$(comm -23 "$T/up_ids" "$T/req_ids" | wc -l)" 0
check "every 2xx has an outcome record" "$(comm -23 "$T/ok_ids" "$T/out_ids" | wc -l)" 0
check "no request left open (abandoned outcomes written)" "$(comm -23 "$T/req_ids" "$T/out_ids" | wc -l)" 0
finish
