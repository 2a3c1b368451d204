#!/bin/bash
# Bodies of 64 KiB and more are made ready (parsed, validated,
# serialized) on the offload pool's 2 threads.  A SIGTERM while such
# preps are queued or running, after a reload has replaced the config
# their requests started with, must end cleanly: the requests are
# abandoned at exit (their config reference goes with them), and a prep
# reads the config (products.request's subproduct list) through a
# reference of its own; queued preps are dropped, not run.  Under the
# sanitized build a prep that read the freed config was a
# heap-use-after-free in the gateway's exit (exit status not 0).
#
# The window: four 28 MB document uploads keep both pool threads busy
# (their preps take a good part of a second each, more under ASan or
# valgrind); the small but offloaded products requests queue behind
# them.  Every step waits on a condition (requests in flight, the
# reload's log line).  What is left to timing, and so not strictly
# deterministic, is that the uploads' preps outlast those few steps;
# the test checks afterwards that they did (the exit dropped queued
# preps, and no products request went upstream), so a missed window
# fails the test rather than passing it without proving anything.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

IND=/management/clients/individuals
DOCS=4		# 28 MB uploads, two at a time on the pool
PRODS=12	# products requests queued behind them
CALLER_A_EXTRA=', "allow": ["*"], "clients": "all"'
MAX_BODY=262144
LIMITS_EXTRA=', "max_buffered_bytes": 2147483648'
# No drain: what is in flight at SIGTERM is abandoned at once.
EXTRA=', "shutdown_timeout_ms": 0'
start_mock -s 201
make_config
start_gw

send() { # send FILE PATH OUT: POST as caller A; the status goes to OUT
	curl -s -o /dev/null -w '%{http_code}' --max-time 120 \
	    -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
	    --data-binary @"$1" "$GW_URL$2" > "$3"
}
in_flight() { metric_is "$GW_URL" cmgate_requests_in_flight "$1"; }

post "$SEED" > /dev/null
C=$(json_field "$T/resp" id)
curl -s -o "$T/resp" -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
    --data '{"subproduct":"cards_individuals"}' "$GW_URL$IND/$C/products"
P=$(json_field "$T/resp" id)
check_match "a client and a product to upload to" "$C/$P" '^[^/]+/[^/]+$'
base=$(grep -c '"path":"[^"]*/products"' "$T/mock.log")

# Under valgrind (20-50 times slower) a 5.6 MB body holds the pool as
# long, and 28 MB ones would take minutes only to be read.
IMG=$((10 * 1024 * 1024)); [ -z "${CMGATE_WRAPPER:-}" ] || IMG=$((2 * 1024 * 1024))
doc_body "$T/big.json" "$IMG"
# A valid products body padded past the offload threshold (64 KiB).
{ printf '{"subproduct":"cards_individuals"'; head -c 100000 /dev/zero | tr '\0' ' '; printf '}'; } > "$T/prod.json"

pids=
for i in $(seq "$DOCS"); do
	send "$T/big.json" "$IND/$C/products/$P/documentation" "$T/doc.$i.code" &
	pids="$pids $!"
done
# Every upload read in full and its prep handed to the pool.
wait_until -n 600 in_flight "$DOCS" || fail "the $DOCS uploads were not all in flight"
for i in $(seq "$PRODS"); do
	send "$T/prod.json" "$IND/$C/products" "$T/prod.$i.code" &
	pids="$pids $!"
done
wait_until -n 600 in_flight $((DOCS + PRODS)) || fail "the products requests were not all in flight"
# The requests in flight keep the config they started with; after the
# reload they are its only holders (with, after the fix, their preps).
reload_gw || fail "the reload did not happen"
stop_gw
wait $pids
check "the gateway exits 0" "$GW_RC" 0
check "no sanitizer report" "$(grep -c 'ERROR: AddressSanitizer\|runtime error:' "$T/gw.log")" 0
check "every request in flight was abandoned at exit" \
    "$(grep -c 'abandoned at exit' "$T/gw.log")" $((DOCS + PRODS))
# The window held: preps were still queued at the exit (dropped, not
# run; the queue is first in first out, so the last products request's
# prep was among them, and no products request went upstream).
check_match "queued preps were dropped at exit" \
    "$(grep -o 'shutdown: [0-9]* offloaded jobs dropped unrun' "$T/gw.log")" \
    'shutdown: [1-9][0-9]* offloaded'
check "no products request reached CryptoMate" \
    "$(( $(grep -c '"path":"[^"]*/products"' "$T/mock.log") - base ))" 0
check_match "shutdown completes" "$(tail -n 1 "$T/gw.log")" 'shutdown: complete'
finish
