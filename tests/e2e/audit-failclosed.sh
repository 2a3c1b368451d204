#!/bin/bash
# Fail closed: once the audit log cannot write (an injected write error,
# then a real full disk when a small tmpfs can be mounted), requests get
# 503 audit_unavailable, /healthz goes red, and nothing more reaches the
# upstream.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config

# 1. Injected failure: the 5th record fails (start + 2 requests' request
#    and outcome records fit before it... counted from open).
CMGATE_AUDIT_FAIL_AFTER=4 start_gw
s1=$(post "$SEED"); s2=$(post "$SEED")
check "first request before the fault" "$s1" 200
seen=$(mock_count)
s3=$(post "$SEED")
check "request once the log fails" "$s3" 503
check_match "503 code" "$(cat "$T/resp")" '"code":"audit_unavailable"'
s4=$(post "$SEED")
check "every later request" "$s4" 503
st=$(curl -s -o "$T/h" -w '%{http_code}' "$GW_URL/healthz")
check "healthz goes red" "$st" 503
check_match "healthz names the audit log" "$(cat "$T/h")" '"audit":"failed"'
check "no upstream call after the fault" "$(mock_count)" "$seen"
stop_gw

# 1b. The log fails while keyed requests wait on the idempotency store:
#     their lookups come back to a log that refuses the request record,
#     and each request's fields are freed once (they were freed twice,
#     and the gateway died under ASan).  The window is a race (the
#     log must fail while lookups are out), so this is a regression
#     check that catches the bug often, not always.
CMGATE_AUDIT_FAIL_AFTER=3 start_gw
pids=
for i in $(seq 1 40); do
	curl -s -o /dev/null -w '%{http_code}\n' \
	    -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
	    -H "Idempotency-Key: k-race-$i" --data-binary @"$SEED" \
	    "$GW_URL/management/clients/individuals" > "$T/race.$i" &
	pids="$pids $!"
done
wait $pids	# the curls only: the mock and the gateway are children too
codes=$(cat "$T"/race.* | sort | uniq -c | tr -s ' \n' ' ')
echo "# keyed requests while the log fails: $codes"
check_nomatch "every keyed request answered" "$codes" '000'
st=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
check "gateway alive after the keyed requests" "$st" 503
check_match "fault logged" "$(cat "$T/gw.log")" 'poison|audit.*(fail|error)'
stop_gw

# 1c. The log fails on the outcome record, after the request went out:
#     the caller learns the request may have been processed, not that
#     nothing was forwarded.
CMGATE_AUDIT_FAIL_AFTER=1 start_gw
before=$(mock_count)
check "outcome record fails" "$(post "$SEED")" 503
check "it did reach the upstream" "$(mock_count)" "$((before + 1))"
check_match "the answer says it may have been processed" "$(cat "$T/resp")" '"code":"audit_unavailable".*may have been processed'
stop_gw

# 2. A real full disk, when this machine lets us mount a small tmpfs.
mkdir -p "$T/full"
if mount -t tmpfs -o size=256k tmpfs "$T/full" 2>/dev/null; then
	cp "$T/audit.key" "$T/full/audit.key"
	sed 's#"path": "audit.log", "key_file": "audit.key"#"path": "full/audit.log", "key_file": "full/audit.key"#' \
	    "$T/cmgate.json" > "$T/full.json" && mv "$T/full.json" "$T/cmgate.json"
	start_gw
	# Fill the disk to the last block.
	dd if=/dev/zero of="$T/full/filler" bs=1k 2>/dev/null
	: > "$T/mock.log"
	codes=""
	first503_seen=
	i=0
	while [ $i -lt 40 ]; do
		c=$(post "$SEED"); codes="$codes $c"; i=$((i + 1))
		if [ "$c" = 503 ] && [ -z "$first503_seen" ]; then
			first503_seen=$(mock_count)
		fi
	done
	check_match "full disk gives 503" "$codes" '503'
	after=$(echo "$codes" | sed 's/[^5]*503//')
	check_nomatch "no success after the first 503" "$after" '200'
	check "no upstream call after the first 503" "$(mock_count)" "${first503_seen:-none}"
	stop_gw
	umount "$T/full"
else
	echo "# tmpfs not mountable here: full-disk part skipped (the injected fault covers it)"
fi
finish
