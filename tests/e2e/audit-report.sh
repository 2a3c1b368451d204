#!/bin/bash
# The compliance report end to end: the real gateway against the mock
# through every outcome class (forwarded 2xx, CryptoMate 4xx and 5xx,
# refused, gateway errors 504 and 502, abandoned by a kill -9), then
# `cmgate-audit report`, read in headless Chromium: the DOM holds the
# counts and the sections, a hostile caller-sent string (an
# Idempotency-Key `<img src=x onerror=alert(1)>`; a hostile JSON field
# *name* never reaches the log, validate.c does not echo it) is text and
# adds no element, the browser makes no network request (net log,
# checked against a control page that does make one), and a tampered
# log gives a page whose verdict is the failure naming the record, exit 1.
# The screenshot is kept with the test outputs (report.png).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
	echo "SKIP: chromium is not installed (scripts/install-deps.sh installs"
	echo "      Debian's chromium); the report's browser checks need it"
	exit 77
fi
HOSTILE='<img src=x onerror=alert(1)>'

# browse NAME FILE [chromium args]: load FILE, DOM to $T/NAME.dom, the
# browser's net log to $T/NAME.netlog.  DNS is mapped to nowhere, so a
# load that got past the page's CSP shows in the net log and fails.
browse() {
	local name=$1 file=$2; shift 2
	timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
	    --no-first-run --disable-background-networking \
	    --disable-component-update --disable-sync \
	    --disable-features=OptimizationHints,MediaRouter,Translate \
	    --user-data-dir="$T/chrome" \
	    --host-resolver-rules='MAP * ~NOTFOUND' \
	    --log-net-log="$T/$name.netlog" "$@" "file://$file" \
	    > "$T/$name.dom" 2> "$T/$name.chromium-err"
}
# net_urls NAME: the network URLs requested, less the browser's own
# services (update checks, time, accounts: Google hosts, whatever the
# page), which headless Chromium calls with no page loaded at all.
net_urls() {
	grep -oE '"url":"(https?|wss?|ftp)://[^"]*"' "$T/$1.netlog" 2>/dev/null |
	    grep -vE '"url":"[a-z]+://([a-z0-9-]+\.)*(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)[:/]' |
	    sort -u
}
dom_id() { # dom_id NAME ID: the text of the element with that id
	grep -oE "id=\"$2\"[^>]*>[^<]*" "$T/$1.dom" | head -n1 | sed 's/.*>//'
}

# The control: a page that does load something is caught.
printf '<!DOCTYPE html><html><body><img src="http://192.0.2.1/x.png">control</body></html>\n' > "$T/control.html"
browse control "$T/control.html" --dump-dom
check_match "the net-log check sees a page's network load" \
    "$(net_urls control)" '192\.0\.2\.1'

start_mock
TIMEOUT_MS=700 make_config
start_gw

for i in 1 2 3; do
	check_match "forwarded $i" "$(post "$SEED")" '^2'
done
mock_behave '{"count":1,"status":422}'
check "CryptoMate 4xx" "$(post "$SEED")" 422
mock_behave '{"count":1,"status":500}'
check_match "CryptoMate 5xx" "$(post "$SEED")" '^5'
check "refused: validation" "$(post_json '{"first_name":1}')" 422
check "refused: no caller" "$(TOKEN=nope post "$SEED")" 401
mock_behave '{"count":1,"hang":true}'
check "timeout, hostile idempotency key" \
    "$(post "$SEED" -H "Idempotency-Key: $HOSTILE")" 504

# Abandoned: kill -9 while CryptoMate holds the request (its request
# record is durable before it is sent); the restart records the outcome.
mock_behave '{"count":1,"hang":true}'
n0=$(mock_count)
post "$SEED" > /dev/null &
CURL_PID=$!
i=0
while [ "$(mock_count)" -le "$n0" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
check "the held request reached the mock" "$([ "$(mock_count)" -gt "$n0" ] && echo y)" y
kill -9 "$GW_PID"; wait "$GW_PID" 2>/dev/null; GW_PID=
wait "$CURL_PID" 2>/dev/null
start_gw
check_match "the restart recorded it abandoned" \
    "$(grep -c '"error_class":"abandoned"' "$T/audit.log")" '^1$'
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null; MOCK_PID=
check "gateway error: CryptoMate unreachable" "$(post "$SEED")" 502
stop_gw
check "clean stop" "$GW_RC" 0

"$CMGATE_AUDIT" report --key-file "$T/audit.key" -o "$T/report.html" \
    "$T"/audit.log* 2> "$T/report.err"
check "report exit code (valid)" "$?" 0
"$CMGATE_AUDIT" report --key-file "$T/audit.key" --json "$T"/audit.log* \
    > "$T/report.json" 2>/dev/null
check_match "--json to stdout" "$(head -c 40 "$T/report.json")" '^\{"verdict":"pass"'
check_match "json: the classes" "$(cat "$T/report.json")" \
    '"classes":\{"fwd_2xx":3,"cm_4xx":1,"cm_5xx":1,"refused":2,"gw_error":2,"abandoned":1\}'
check_nomatch "json: the hostile string is escaped" "$(cat "$T/report.json")" '<img'

browse report "$T/report.html" --dump-dom
check "no network request from the report" "$(net_urls report)" ""
check "verdict" "$(grep -o 'data-verdict="[a-z]*"' "$T/report.dom")" 'data-verdict="pass"'
for s in integrity activity refusals reconcile upstream lifecycle signoff; do
	check "section $s" "$(grep -c "<section id=\"$s\"" "$T/report.dom")" 1
done
check "forwarded 2xx" "$(dom_id report total-fwd_2xx)" 3
check "CryptoMate 4xx" "$(dom_id report total-cm_4xx)" 1
check "CryptoMate 5xx" "$(dom_id report total-cm_5xx)" 1
check "refused" "$(dom_id report total-refused)" 2
check "gateway errors" "$(dom_id report total-gw_error)" 2
check "abandoned" "$(dom_id report total-abandoned)" 1
check "all answered" "$(dom_id report total-all)" 10
check "needs reconciliation" "$(dom_id report reconcile-count)" 2
check "the chart is drawn" "$(grep -c '<svg id="chart"' "$T/report.dom")" 1
check "unauthenticated row" "$(grep -c '<tr><td>(unauthenticated)</td>' "$T/report.dom")" 1
check "the hostile key is text" \
    "$(grep -c '&lt;img src=x onerror=alert(1)&gt;' "$T/report.dom")" 1
check "no element from the log: no <img>" "$(grep -c '<img' "$T/report.dom")" 0
check "no script" "$(grep -ci '<script' "$T/report.dom")" 0
check_nomatch "no body value (digests stay out)" "$(cat "$T/report.dom")" \
    'Maria|Barber|body_digest|response_digest'
browse shot "$T/report.html" --screenshot="$T/report.png" --window-size=1200,3600
check "screenshot saved" "$([ -s "$T/report.png" ] && echo y)" y
check "no network request (screenshot run)" "$(net_urls shot)" ""

# A tampered log: one byte of a 4xx outcome changed.
mkdir "$T/tampered"
cp "$T"/audit.log "$T"/audit.log.0* "$T/tampered/" 2>/dev/null
f=$(grep -l '"upstream_status":422' "$T"/tampered/audit.log*)
seq=$(grep '"upstream_status":422' "$f" | grep -o '"seq":[0-9]*' | head -n1 | cut -d: -f2)
sed -i 's/"upstream_status":422/"upstream_status":423/' "$f"
"$CMGATE_AUDIT" report --key-file "$T/audit.key" -o "$T/tampered.html" \
    "$T"/tampered/audit.log* 2> "$T/tampered.err"
check "tampered: exit 1" "$?" 1
browse tampered "$T/tampered.html" --dump-dom
check "tampered: verdict" "$(grep -o 'data-verdict="[a-z]*"' "$T/tampered.dom")" 'data-verdict="fail"'
check_match "tampered: the finding names the record" \
    "$(cat "$T/tampered.dom")" "MODIFIED</b></td><td>seq=$seq<"
check "tampered: the modified record is not counted" \
    "$(dom_id tampered total-cm_4xx)" 0
rm -rf "$T/chrome"
finish
