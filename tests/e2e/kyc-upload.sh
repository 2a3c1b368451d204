#!/bin/bash
# Large document uploads: a 28 MB body (two 10 MiB images) is forwarded
# intact while small requests keep answering, and
# limits.max_buffered_bytes holds under many uploads at once.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

IND=/management/clients/individuals
CALLER_A_EXTRA=', "allow": ["*"], "clients": "all"'
LIMITS_EXTRA=${LIMITS_EXTRA:-}
start_mock -s 201
make_config
start_gw

upload() { # upload FILE CLIENT PRODUCT OUT: prints the status; answer in OUT
	curl -s -o "$4" -D "$4.h" -w '%{http_code}' -H "Authorization: Bearer $TOKEN_A" \
	    -H 'Content-Type: application/json' --data-binary @"$1" \
	    "$GW_URL$IND/$2/products/$3/documentation"
}
small() { curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $TOKEN_A" "$GW_URL$IND/countries"; }

post "$SEED" > /dev/null
C=$(json_field "$T/resp" id)
curl -s -o "$T/resp" -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
    --data '{"subproduct":"cards_individuals"}' "$GW_URL$IND/$C/products"
P=$(json_field "$T/resp" id)

# ---- 28 MB: two 10 MiB images ------------------------------------------------
doc_body "$T/big.json" $((10 * 1024 * 1024))
check_match "the body is about 28 MB" "$(stat -c %s "$T/big.json")" '^2[78][0-9]{6}$'
upload "$T/big.json" "$C" "$P" "$T/big.resp" > "$T/big.code" &
up=$!
# Small requests while the upload is read, checked and forwarded: each
# answers, and well inside a generous bound (the loop never stalls for
# the upload's validation or digests).
: > "$T/small.txt"
while kill -0 $up 2>/dev/null; do small >> "$T/small.txt"; done
wait $up
check "the upload is accepted" "$(cat "$T/big.code")" 200
check_match "small requests were served during it" "$(wc -l < "$T/small.txt")" '^[1-9]'
check "every small request answered 200" "$(grep -vc '^200 ' "$T/small.txt")" 0
worst=$(sort -k2 -n "$T/small.txt" | tail -n1 | cut -d' ' -f2)
echo "# worst small request during the upload: ${worst}s"
# Generous, and more so under a tool (valgrind is 20-50 times slower).
limit=2000; [ -z "${CMGATE_WRAPPER:-}" ] || limit=60000
check_range "the worst small request (ms)" "$(awk -v t="$worst" 'BEGIN { printf "%d", t * 1000 }')" 0 "$limit"
up=$(curl -s "$MOCK_URL/__test/uploads")
check "the front arrived intact" "$(printf '%s' "$up" | grep -c "$(sha256sum "$T/big.json.front" | cut -d' ' -f1)")" 1
check "the back arrived intact" "$(printf '%s' "$up" | grep -c "$(sha256sum "$T/big.json.back" | cut -d' ' -f1)")" 1
check "the audit log holds no image" "$(head -c 64 "$T/big.json.front" | base64 -w0 | cut -c1-40 | grep -c -F -f - "$T/audit.log")" 0

# ---- max_buffered_bytes: more uploads at once than the cap holds ---------
stop_gw
LIMITS_EXTRA=', "max_document_body_bytes": 4194304, "max_buffered_bytes": 16777216'
make_config
start_gw
doc_body "$T/mid.json" $((1400 * 1024))	# about 3.7 MB, counted twice: 7.5 MB
pids=
for i in 1 2 3 4 5 6 7 8; do
	upload "$T/mid.json" "$C" "$P" "$T/mid.$i.resp" > "$T/mid.$i.code" &
	pids="$pids $!"
done
wait $pids
codes() { local f; for f in "$T"/mid.*.code; do cat "$f"; echo; done; }
ok=$(codes | grep -c '^200$')
busy=$(codes | grep -c '^503$')
echo "# 8 uploads at once: $ok accepted, $busy busy"
check "every upload answered 200 or 503" "$((ok + busy))" 8
check_range "accepted" "$ok" 1 8
check "the gateway still serves" "$(small | cut -d' ' -f1)" 200
# With 16 MiB for bodies and each upload counted at 7.5 MB, at most two
# are held at once: eight sent together cannot all be.
check_range "busy" "$busy" 1 7
b=$(grep -l '^503' "$T"/mid.*.code | head -n1)
check_match "a busy answer says why" "$(cat "${b%.code}.resp")" '"code":"busy"'
check_match "and when to retry" "$(tr -d '\r' < "${b%.code}.resp.h")" 'Retry-After: 1'
finish
