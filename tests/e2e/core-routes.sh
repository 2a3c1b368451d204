#!/bin/bash
# The front end: routes, methods, auth, media type, body limits, and the
# JSON error shape with a request id that matches X-Request-Id.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
MAX_BODY=2048 make_config
start_gw

st=$(curl -s -o "$T/h" -w '%{http_code}' "$GW_URL/healthz")
check "healthz needs no token" "$st" 200
check_match "healthz says ok" "$(cat "$T/h")" '"status":"ok"'

st=$(post "$SEED")
check "seed body is forwarded" "$st" 200
check_match "upstream answer relayed" "$(cat "$T/resp")" '"status":"pending"'
rid=$(resp_header X-Request-Id)
check_match "X-Request-Id on success" "$rid" '^[0-9a-f]{32}$'

st=$(curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' "$GW_URL/nope")
check "unknown path" "$st" 404
check_match "404 is JSON" "$(cat "$T/resp")" '^\{"code":"not_found","message":"[^"]+","request_id":"[0-9a-f]{32}"\}$'
check "404 request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"

st=$(curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -X PATCH -H "Authorization: Bearer $TOKEN_A" "$GW_URL/management/clients/individuals")
check "PATCH on the route" "$st" 405
check_match "405 code" "$(cat "$T/resp")" '"code":"method_not_allowed"'
check "405 Allow header lists the path's methods" "$(resp_header Allow)" "POST, GET"
st=$(curl -s -o "$T/resp" -w '%{http_code}' -X DELETE "$GW_URL/management/clients/individuals")
check "DELETE on the route" "$st" 405

st=$(curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$SEED" "$GW_URL/management/clients/individuals")
check "no token" "$st" 401
check_match "401 code" "$(cat "$T/resp")" '"code":"unauthenticated"'
check "401 request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"
st=$(curl -s -o "$T/resp" -w '%{http_code}' -H 'Authorization: Bearer wrong-token' -H 'Content-Type: application/json' --data-binary @"$SEED" "$GW_URL/management/clients/individuals")
check "wrong token" "$st" 401
st=$(curl -s -o "$T/resp" -w '%{http_code}' -H "Authorization: Basic $TOKEN_A" -H 'Content-Type: application/json' --data-binary @"$SEED" "$GW_URL/management/clients/individuals")
check "token under another scheme" "$st" 401
check_nomatch "401 body does not echo the token" "$(cat "$T/resp")" "$TOKEN_A"

st=$(CT=text/plain post "$SEED")
check "text/plain body" "$st" 415
check_match "415 code" "$(cat "$T/resp")" '"code":"unsupported_media_type"'
st=$(CT='application/json; charset=utf-8' post "$SEED")
check "charset parameter accepted" "$st" 200
check "charset=\"UTF-8\" accepted" "$(CT='application/json;charset="UTF-8"' post "$SEED")" 200
check "charset=latin1 refused" "$(CT='application/json; charset=latin1' post "$SEED")" 415
check "charset=utf-16 refused" "$(CT='application/json; charset=utf-16' post "$SEED")" 415
check "charset=utf-8x refused" "$(CT='application/json; charset=utf-8x' post "$SEED")" 415
check "charset = latin1 (spaces) refused" "$(CT='application/json; charset = latin1' post "$SEED")" 415
check "an unterminated quote refused" "$(CT='application/json; charset="utf-8' post "$SEED")" 415
check "a stray quote refused" "$(CT='application/json; charset=utf-8"' post "$SEED")" 415
check "another parameter accepted" "$(CT='application/json; v=1' post "$SEED")" 200
st=$(CT=Application/JSON post "$SEED")
check "media type is case-insensitive" "$st" 200
st=$(CT=application/jsonx post "$SEED")
check "application/jsonx is not JSON" "$st" 415

# A body of exactly max_body_bytes passes; one byte more is 413.
size=$(wc -c < "$SEED")
{ cat "$SEED"; head -c $((2048 - size)) /dev/zero | tr '\0' ' '; } > "$T/exact.json"
check "exact body is 2048 bytes" "$(wc -c < "$T/exact.json" | tr -d ' ')" 2048
st=$(post "$T/exact.json")
check "body of exactly max_body_bytes" "$st" 200
{ cat "$T/exact.json"; printf ' '; } > "$T/over.json"
st=$(post "$T/over.json")
check "one byte over max_body_bytes" "$st" 413
check_match "413 is JSON" "$(cat "$T/resp")" '"code":"payload_too_large"'

st=$(post_json '{"first_name": "Ana",')
check "truncated JSON" "$st" 400
check_match "400 code" "$(cat "$T/resp")" '"code":"invalid_json"'
check "400 request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"

st=$(post_json '{"first_name":"  Ana ","last_name":"","email":"not-an-email","birth_date":"1984-02-30","address":{"street_line1":"x","city":"y","country":"ZZ"},"nickname":"a"}')
check "broken body" "$st" 422
body=$(cat "$T/resp")
check_match "422 code" "$body" '"code":"validation_failed"'
for f in last_name email birth_date address.country nickname; do
	check_match "422 lists $f" "$body" "\"field\":\"$f\""
done
check_nomatch "422 does not list the valid first_name" "$body" '"field":"first_name"'
check "422 request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"

# Every 200 above reached it; nothing else did.
check "nothing invalid reached the upstream" "$(mock_count)" 6
finish
