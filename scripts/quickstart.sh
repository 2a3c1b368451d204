#!/bin/sh
# The README's first command: install, build, and run cmgate on its
# bundled defaults in front of the mock CryptoMate, then show a good
# request going through and a broken one coming back 422, the audit log
# verifying, and its compliance report (run/report.html).
#
#   scripts/quickstart.sh          keep the gateway running (Ctrl-C stops)
#   scripts/quickstart.sh --demo   show the two requests, then stop
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
src/cmgate -t -c conf/quickstart.json

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
src/cmgate -c conf/quickstart.json 2> run/cmgate.log &
pids="$pids $!"
wait_line run/cmgate.log

TOKEN=quickstart-demo-token
echo
echo "== A valid request (the API page's example), through cmgate:"
echo "curl -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' \\"
echo "     --data @tests/data/seed.json http://127.0.0.1:8080/management/clients/individuals"
curl -s -i -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data @tests/data/seed.json http://127.0.0.1:8080/management/clients/individuals
echo
echo
echo "== A broken request: every bad field is listed at once:"
curl -s -i -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data '{"first_name":"  Ana ","last_name":"","email":"not-an-email","birth_date":"1984-02-30","address":{"street_line1":"x","city":"y","country":"ZZ"},"nickname":"a"}' \
    http://127.0.0.1:8080/management/clients/individuals
echo
echo
echo "== The audit log verifies:"
src/cmgate-audit verify --key-file run/audit.key run/audit.log || true
echo
echo "== The compliance report of this log (open it in a browser; it loads nothing):"
echo "src/cmgate-audit report --key-file run/audit.key -o run/report.html run/audit.log*"
src/cmgate-audit report --key-file run/audit.key -o run/report.html \
    run/audit.log* || true
echo "file://$top/run/report.html"
echo
if [ "${1:-}" = "--demo" ]; then
	exit 0
fi
echo "cmgate is listening on http://127.0.0.1:8080 (logs: run/cmgate.log,"
echo "audit: run/audit.log, mock upstream on :9090).  Ctrl-C stops both."
wait
