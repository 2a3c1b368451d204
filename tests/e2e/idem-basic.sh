#!/bin/bash
# Idempotency-Key: replay after success (byte for byte, one upstream
# request), normalized-body matching, 422 on another body, per-caller
# scope, header syntax, stored 4xx, a validation 422 not stored, audit members,
# idempotency.required and idempotency.enabled.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
start_gw

# post_key KEY FILE [curl args]: POST FILE with Idempotency-Key KEY.
post_key() { k=$1; f=$2; shift 2; post "$f" -H "Idempotency-Key: $k" "$@"; }
save() { cp "$T/resp" "$T/$1.body"; cp "$T/resp.h" "$T/$1.h"; }

# ---- retry after success -------------------------------------------------
st=$(post_key k-basic-1 "$SEED")
check "first use is processed" "$st" 200
check "first use is not marked replayed" "$(resp_header Idempotent-Replayed)" ""
rid1=$(resp_header X-Request-Id)
ct1=$(resp_header Content-Type)
save first
check "upstream saw the first use" "$(mock_count)" 1

st=$(post_key k-basic-1 "$SEED")
check "retry: same status" "$st" 200
check "retry: marked Idempotent-Replayed" "$(resp_header Idempotent-Replayed)" true
check "retry: same Content-Type" "$(resp_header Content-Type)" "$ct1"
if cmp -s "$T/first.body" "$T/resp"; then ok "retry: body byte for byte"; CHECKS=$((CHECKS+1))
else fail "retry: body differs"; fi
rid2=$(resp_header X-Request-Id)
check_match "retry: has its own X-Request-Id" "$rid2" '^[0-9a-f]{32}$'
check_nomatch "retry: X-Request-Id is new" "$rid2" "^$rid1\$"
check "retry: nothing sent upstream" "$(mock_count)" 1

# The same body written differently normalizes to the same digest.
cat > "$T/messy.json" <<'JSON'
{ "last_name":"  Barber ","first_name":"Maria","second_name":"Julia",
  "email":"MJuliaBarber@Example.com","birth_date":"1984-11-21",
  "address":{"country":"ar","street_line1":"Florida   9860","city":"Del Viso",
  "postal_code":"1669","state":"arg-b"},"phone_country_code":"+54","phone_number":"11 6886-0622"}
JSON
st=$(post_key k-basic-1 "$T/messy.json")
check "same body, other spelling: replayed" "$(resp_header Idempotent-Replayed)/$st" true/200
check "same body, other spelling: nothing upstream" "$(mock_count)" 1

# The draft's sf-string form names the same key.
st=$(post_key '"k-basic-1"' "$SEED")
check "quoted form of the key: replayed" "$(resp_header Idempotent-Replayed)/$st" true/200

# ---- another body under the same key -------------------------------------
sed 's/"Maria"/"Marta"/' "$SEED" > "$T/other.json"
st=$(post_key k-basic-1 "$T/other.json")
check "different body: 422" "$st" 422
check "different body: code" "$(json_field "$T/resp" code)" idempotency_key_reused
check "422 request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"
check "different body: nothing upstream" "$(mock_count)" 1

# ---- keys are per caller ---------------------------------------------------
st=$(TOKEN=$TOKEN_B post_key k-basic-1 "$SEED")
check "other caller, same key: processed" "$st/$(resp_header Idempotent-Replayed)" 200/
check "other caller reached upstream" "$(mock_count)" 2

# ---- no key: processed every time ------------------------------------------
post "$SEED" >/dev/null; post "$SEED" >/dev/null
check "no key: each request goes upstream" "$(mock_count)" 4

# ---- header syntax -----------------------------------------------------------
long=$(head -c 256 /dev/zero | tr '\0' 'a')
st=$(post_key "$long" "$SEED")
check "256-character key: 400" "$st" 400
check "256-character key: code" "$(json_field "$T/resp" code)" invalid_idempotency_key
st=$(post_key "$(printf 'caf\303\251')" "$SEED")
check "non-ASCII key: 400" "$st/$(json_field "$T/resp" code)" 400/invalid_idempotency_key
st=$(post "$SEED" -H "Idempotency-Key: k-a" -H "Idempotency-Key: k-b")
check "two Idempotency-Key headers: 400" "$st/$(json_field "$T/resp" code)" 400/invalid_idempotency_key
st=$(post "$SEED" -H 'Idempotency-Key;')
check "empty key: 400" "$st/$(json_field "$T/resp" code)" 400/invalid_idempotency_key
st=$(post_key '"unterminated' "$SEED")
check "broken sf-string: 400" "$st" 400
check "bad keys sent nothing upstream" "$(mock_count)" 4
st=$(post_key "$(head -c 255 /dev/zero | tr '\0' 'b')" "$SEED")
check "255-character key: processed" "$st" 200
st=$(post_key 'key with spaces & "quotes" \ ok' "$SEED")
check "printable key with spaces and quotes: processed" "$st" 200
st=$(post_key 'key with spaces & "quotes" \ ok' "$SEED")
check "... and replayed" "$(resp_header Idempotent-Replayed)" true
check "upstream count after the long keys" "$(mock_count)" 6

# ---- CryptoMate's 4xx and 2xx bodies are stored as they came -------------
mock_behave '{"count":1,"status":412,"body":"{\"code\":\"DUPLICATE_CLIENT\",\"message\":\"Duplicate Client\"}","content_type":"application/problem+json"}'
st=$(post_key k-basic-412 "$SEED")
check "upstream 412 relayed" "$st" 412
save c412
st=$(post_key k-basic-412 "$SEED")
check "412 replayed" "$st/$(resp_header Idempotent-Replayed)" 412/true
check "412 replay: Content-Type kept" "$(resp_header Content-Type)" application/problem+json
if cmp -s "$T/c412.body" "$T/resp"; then ok "412 replay: body byte for byte"; CHECKS=$((CHECKS+1))
else fail "412 replay: body differs"; fi
mock_behave '{"count":1,"status":201,"body":"{\"id\":\"cl-201\"}","content_type":"application/json; charset=utf-8"}'
st=$(post_key k-basic-201 "$SEED")
check "upstream 201 relayed" "$st" 201
st=$(post_key k-basic-201 "$SEED")
check "201 replayed" "$st/$(resp_header Idempotent-Replayed)/$(cat "$T/resp")" '201/true/{"id":"cl-201"}'
check "201 replay: charset kept" "$(resp_header Content-Type)" "application/json; charset=utf-8"
check "4xx/2xx replays sent nothing upstream" "$(mock_count)" 8

# ---- a refusal before sending stores nothing (Stripe's rule) --------------
# The gateway's own 422 (validation) is not stored under the key: a retry
# recomputes it, and the key stays free for the corrected body.
printf '{"first_name":"Maria"}' > "$T/invalid.json"
st=$(post_key k-basic-invalid "$T/invalid.json")
check "invalid body: 422" "$st/$(json_field "$T/resp" code)" 422/validation_failed
check_match "invalid body: details listed" "$(cat "$T/resp")" '"details":\[\{"field":'
check "invalid body: request_id = X-Request-Id" "$(json_field "$T/resp" request_id)" "$(resp_header X-Request-Id)"
st=$(post_key k-basic-invalid "$T/invalid.json")
check "invalid body again: 422 recomputed, not replayed" "$st/$(resp_header Idempotent-Replayed)" 422/
check "nothing upstream for the 422s" "$(mock_count)" 8
check_match "the 422 is a reject record with the key" \
    "$(grep '"type":"reject".*"code":"validation_failed"' "$T/audit.log")" '"idempotency_key":"k-basic-invalid"'
st=$(post_key k-basic-invalid "$SEED")
check "valid body under a key refused before sending: processed" "$st/$(resp_header Idempotent-Replayed)" 200/
check "the corrected body went upstream" "$(mock_count)" 9
st=$(post_key k-basic-invalid "$SEED")
check "and its outcome is the one stored" "$st/$(resp_header Idempotent-Replayed)" 200/true
# A refused request holds no claim: the same key at once is not 409.
st=$(post_key k-basic-inv2 "$T/invalid.json")
"$top_builddir/src/cmgate-idem" -c "$T/cmgate.json" show onboarding k-basic-inv2 >/dev/null 2>&1
check "the store holds nothing for a key refused with 422" "$st/$?" 422/1
st=$(post_key k-basic-inv2 "$SEED")
check "a claim is released with a refusal" "$st" 200

# ---- audit records carry the key and "replayed" -------------------------
a_req=$(grep '"type":"request"' "$T/audit.log" | grep "\"request_id\":\"$rid1\"")
check_match "request record has the key" "$a_req" '"idempotency_key":"k-basic-1"'
a_out=$(grep '"type":"outcome"' "$T/audit.log" | grep "\"request_id\":\"$rid1\"")
check_match "first outcome: replayed false" "$a_out" '"idempotency_key":"k-basic-1","replayed":false'
a_rep=$(grep '"type":"outcome"' "$T/audit.log" | grep "\"request_id\":\"$rid2\"")
check_match "replay recorded as replayed, with the original id" "$a_rep" "\"replayed\":true,\"original_request_id\":\"$rid1\""
check "no request record for a replay" "$(grep -c "\"type\":\"request\".*\"request_id\":\"$rid2\"" "$T/audit.log")" 0
check_match "key with quotes escaped in the audit" "$(cat "$T/audit.log")" '"idempotency_key":"key with spaces & \\"quotes\\" \\\\ ok"'
check_match "reused key recorded as a reject" "$(grep '"type":"reject"' "$T/audit.log")" '"code":"idempotency_key_reused".*"idempotency_key":"k-basic-1"'
"$CMGATE_AUDIT" verify --key-file "$T/audit.key" "$T/audit.log" >"$T/verify.out" 2>&1
check "audit log verifies" "$?" 0

# ---- idempotency.required ---------------------------------------------------
stop_gw
IDEM_REQUIRED=true make_config
start_gw
st=$(post "$SEED")
check "required, no key: 400" "$st/$(json_field "$T/resp" code)" 400/idempotency_key_required
check "required, no key: nothing upstream" "$(mock_count)" 10
st=$(post_key k-basic-req "$SEED")
check "required, with a key: processed" "$st" 200
st=$(post_key k-basic-1 "$SEED")
check "stored keys survive a restart" "$st/$(resp_header Idempotent-Replayed)" 200/true

# ---- idempotency.enabled = false: the header is ignored ------------------
stop_gw
make_config
sed -i 's/"idempotency": {/"idempotency": { "enabled": false,/' "$T/cmgate.json"
start_gw
n0=$(mock_count)
post_key k-basic-off "$SEED" >/dev/null; post_key k-basic-off "$SEED" >/dev/null
check "disabled: both sent upstream" "$(mock_count)" $((n0 + 2))
check "disabled: no replay header" "$(resp_header Idempotent-Replayed)" ""
finish
