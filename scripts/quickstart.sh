#!/bin/bash
# The README's first command: install, build, and run cmgate on its
# bundled defaults in front of the mock CryptoMate, then walk the whole
# onboarding flow through it (create a client, request the product,
# upload documents, submit, list), show a HEIC photo and a broken body
# refused, a second service that cannot see the first one's client, the
# audit log verifying, and its compliance report (run/report.html).
#
#   scripts/quickstart.sh          keep the gateway running (Ctrl-C stops)
#   scripts/quickstart.sh --demo   show the flow, then stop
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/install-deps.sh
sh scripts/build.sh

mkdir -p run
chmod 700 run
# A random API key for the mock CryptoMate and the gateway to share, and
# the audit log's initial key K0 (auditors keep a copy of it).
[ -f run/api-key ] || (umask 077; openssl rand -hex 24 > run/api-key)
[ -f run/audit.key ] || src/cmgate-audit keygen run/audit.key
# cmgate refuses a config that others than its owner can change, or one
# owned by neither root nor the user it runs as (the seal command in a
# config runs as that user): run a private copy of conf/quickstart.json
# (its ../run/ paths mean the same from run/).
(umask 077; cp conf/quickstart.json run/quickstart.json)
src/cmgate -t -c run/quickstart.json

pids=""
# wait_line FILE: until a process has written "listening on" to FILE.
wait_line() {
	i=0
	until grep -q "listening on" "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 100 ] || { cat "$1"; exit 1; }
		sleep 0.1
	done
}
stop() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap stop EXIT INT TERM

tests/mock-upstream -l 127.0.0.1:9090 -K run/api-key -L run/mock.log \
    > run/mock.out 2>&1 &
pids="$pids $!"
wait_line run/mock.out
src/cmgate -c run/quickstart.json 2> run/cmgate.log &
pids="$pids $!"
wait_line run/cmgate.log

TOKEN=quickstart-demo-token
GW=http://127.0.0.1:8080/management/clients/individuals
# call METHOD PATH [BODY]: one request as the onboarding service, shown.
call() {
	echo "\$ curl -X $1 $GW$2${3:+ --data '$(printf '%.70s' "$3")...'}"
	if [ -n "${3:-}" ]; then
		curl -s -i -X "$1" -H "Authorization: Bearer $TOKEN" \
		    -H 'Content-Type: application/json' --data-binary "$3" "$GW$2"
	else
		curl -s -i -X "$1" -H "Authorization: Bearer $TOKEN" "$GW$2"
	fi
	echo; echo
}
# first_id: the first "id" of the JSON answer on stdin.
first_id() { grep -o '"id":"[A-Za-z0-9_-]*"' | head -n 1 | cut -d'"' -f4; }

echo
echo "== 1. Create a client (the API page's example), through cmgate:"
out=$(call POST "" "$(cat tests/data/seed.json)"); echo "$out"
CLIENT=$(printf '%s' "$out" | sed -n '/^{/,$p' | first_id)
echo "== 2. Request the cards product for client $CLIENT:"
out=$(call POST "/$CLIENT/products" '{"subproduct":"cards_individuals"}')
echo "$out"
PRODUCT=$(printf '%s' "$out" | sed -n '/^{/,$p' | first_id)
# A tiny JPEG (its signature, a JFIF header and the end marker): enough
# for the gateway's checks and the mock; a real service sends a photo.
JPEG=$(printf '\377\330\377\340\000\020JFIF\000\001\001\000\000\001\000\001\000\000\377\331' | base64 | tr -d '\n')
echo "== 3. Upload the national id, front and back (images are checked:"
echo "      JPEG or PNG, strict base64, at most 10 MiB; the audit log keeps"
echo "      their SHA-256, never the image):"
call POST "/$CLIENT/products/$PRODUCT/documentation" \
    "{\"document\":{\"document_type\":\"national_id\",\"image_front\":\"data:image/jpeg;base64,$JPEG\",\"image_back\":\"data:image/jpeg;base64,$JPEG\",\"metadata\":{\"number\":\"30111222\"}}}"
echo "== 4. Submit it for KYC:"
call POST "/$CLIENT/products/$PRODUCT/submit"
echo "== 5. List the client's products (now in_kyc):"
call GET "/$CLIENT/products"
echo "== 6. An iPhone photo (HEIC) is refused by the gateway; nothing reaches CryptoMate:"
HEIC=$(printf '\000\000\000\030ftypheic\000\000\000\000mif1heic' | base64 | tr -d '\n')
call POST "/$CLIENT/products/$PRODUCT/documentation" \
    "{\"document\":{\"document_type\":\"passport\",\"image_front\":\"$HEIC\"}}"
echo "== 7. A broken client: every bad field is listed at once:"
call POST "" '{"first_name":"  Ana ","last_name":"","email":"not-an-email","birth_date":"1984-02-30","address":{"street_line1":"x","city":"y","country":"ZZ"},"nickname":"a"}'
echo "== 8. Least privilege: the support service may read clients, but only"
echo "      its own: onboarding's client is not found for it:"
echo "\$ curl $GW/$CLIENT  (as support)"
curl -s -i -H "Authorization: Bearer quickstart-support-token" "$GW/$CLIENT"
echo; echo
echo "== The audit log verifies:"
src/cmgate-audit verify --key-file run/audit.key run/audit.log || true
echo
echo "== The compliance report of this log (open it in a browser; it loads nothing):"
echo "src/cmgate-audit report --key-file run/audit.key -o run/report.html run/audit.log"
src/cmgate-audit report --key-file run/audit.key -o run/report.html \
    run/audit.log || true
echo "file://$top/run/report.html"
echo
if [ "${1:-}" = "--demo" ]; then
	exit 0
fi
echo "cmgate is listening on http://127.0.0.1:8080 (logs: run/cmgate.log,"
echo "audit: run/audit.log, mock upstream on :9090).  Ctrl-C stops both."
wait
