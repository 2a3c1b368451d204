#!/bin/bash
# The individual-client KYC flow through cmgate, route by route, against
# the stateful mock: the whole onboarding, every route's statuses, path
# parameters, query strings, wrong methods, bodies where none belong,
# Idempotency-Key on writes, and what the audit log keeps of each.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

IND=/management/clients/individuals
# Every client reachable: ownership is tests/e2e/authz.sh's.
CALLER_A_EXTRA=', "allow": ["*"], "clients": "all"'
start_mock -s 201
make_config
start_gw

api() { # api METHOD PATH [BODY [curl args]]: as onboarding
	local m=$1 p=$2
	shift 2
	if [ $# -ge 1 ]; then
		local b=$1; shift
		printf '%s' "$b" > "$T/req.json"
		curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -X "$m" \
		    -H "Authorization: Bearer $TOKEN_A" \
		    -H 'Content-Type: application/json' \
		    --data-binary @"$T/req.json" "$@" "$GW_URL$p"
	else
		curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -X "$m" \
		    -H "Authorization: Bearer $TOKEN_A" "$GW_URL$p"
	fi
	keep_answer "$T/resp.h" "$T/resp"
}
id_of() { grep -o '"id":"[A-Za-z0-9_-]*"' "$T/resp" | head -n1 | cut -d'"' -f4; }
# A small JPEG and PNG (their signatures and a few bytes): enough for the
# gateway's checks; the mock hashes what it receives.
printf '\377\330\377\340\000\020JFIF\000\001\001\000\000\001\000\001\000\000\377\331' > "$T/front.jpg"
printf '\211PNG\r\n\032\n\000\000\000\rIHDR\000\000\000\001\000\000\000\001\010\002\000\000\000' > "$T/back.png"
JPEG=$(base64 -w0 < "$T/front.jpg")
PNG=$(base64 -w0 < "$T/back.png")
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- the whole flow ------------------------------------------------------
check "create" "$(api POST $IND "$(cat "$SEED")")" 201
C=$(id_of)
check "get" "$(api GET "$IND/$C")" 200
check_match "get answers the client" "$(cat "$T/resp")" "\"id\":\"$C\""
check "update (a full replacement)" "$(api PUT "$IND/$C" "$(sed 's/Del Viso/Pilar/' "$SEED")")" 200
check "countries" "$(api GET "$IND/countries")" 200
check "identifications, alpha-3 sent as alpha-2" "$(api GET "$IND/identifications/arg")" 200
check_match "the mock was asked for AR" "$(tail -n1 "$T/mock.log")" "identifications/AR\""
check "request the product" "$(api POST "$IND/$C/products" '{"subproduct":"cards_individuals"}')" 201
P=$(id_of)
check_match "pending documentation" "$(cat "$T/resp")" '"status":"pending_documentation"'
check "a second request while one is active (CryptoMate's 409 relayed)" "$(api POST "$IND/$C/products" '{"subproduct":"cards_individuals"}')" 409
check "upload front and back" "$(api POST "$IND/$C/products/$P/documentation" "{\"document\":{\"document_type\":\"national_id\",\"image_front\":\"data:image/jpeg;base64,$JPEG\",\"image_back\":\"data:image/png;base64,$PNG\",\"metadata\":{\"number\":\"30111222\"}}}")" 200
check "the mock got the front byte for byte" "$(curl -s "$MOCK_URL/__test/uploads" | grep -c "$(sha "$T/front.jpg")")" 1
check "the mock got the back byte for byte" "$(curl -s "$MOCK_URL/__test/uploads" | grep -c "$(sha "$T/back.png")")" 1
check "the client's phone is known (data requirement)" "$(api GET "$IND/$C")" 200
check "submit (no body)" "$(api POST "$IND/$C/products/$P/submit")" 200
check_match "in KYC" "$(cat "$T/resp")" '"status":"in_kyc"'
check "submit again: not pending documentation (409 relayed)" "$(api POST "$IND/$C/products/$P/submit" '{}')" 409
check "list products" "$(api GET "$IND/$C/products")" 200
check_match "the request is in the list" "$(cat "$T/resp")" "\"id\":\"$P\""
check "list clients" "$(api GET $IND)" 200
check "delete" "$(api DELETE "$IND/$C")" 204
check "get after delete (CryptoMate's 404 relayed)" "$(api GET "$IND/$C")" 404

# ---- refusals before anything leaves --------------------------------------
n0=$(mock_count)
check "path: bad client id" "$(api GET "$IND/abc%24")" 422
check_match "named path.client_id" "$(cat "$T/resp")" '"field":"path.client_id"'
check "path: 65 characters" "$(api GET "$IND/$(printf 'a%.0s' $(seq 65))")" 422
check "path: unknown country" "$(api GET "$IND/identifications/ZZ")" 422
check_match "named path.country_code" "$(cat "$T/resp")" '"field":"path.country_code"'
check "path: bad product request id" "$(api POST "$IND/c1/products/p.1/submit")" 422
check_match "named path.product_request_id" "$(cat "$T/resp")" '"field":"path.product_request_id"'
check "dot segment" "$(curl -s -o /dev/null -w '%{http_code}' --path-as-is -H "Authorization: Bearer $TOKEN_A" "$GW_URL$IND/../individuals")" 404
check "encoded dot segment" "$(curl -s -o /dev/null -w '%{http_code}' --path-as-is -H "Authorization: Bearer $TOKEN_A" "$GW_URL$IND/%2e%2e/x")" 404
check "query string refused" "$(api GET "$IND?page=2")" 400
check_match "as bad_request" "$(cat "$T/resp")" '"code":"bad_request"'
check "query string on a write refused" "$(api POST "$IND?x=1" "$(cat "$SEED")")" 400
check "countries is not a client id (PUT is 405)" "$(api PUT "$IND/countries" "$(cat "$SEED")")" 405
check "Allow: GET" "$(resp_header Allow)" GET
check "PATCH on a client is 405" "$(api PATCH "$IND/c1" '{}')" 405
check "Allow lists the path's methods" "$(resp_header Allow)" "GET, PUT, DELETE"
check "GET with a body is 400" "$(api GET "$IND/c1" '{}')" 400
check "DELETE with a body is 400" "$(api DELETE "$IND/c1" '{}')" 400
check "products.request: unknown subproduct" "$(api POST "$IND/c1/products" '{"subproduct":"ramps_pix"}')" 422
check "products.request: extra field" "$(api POST "$IND/c1/products" '{"subproduct":"cards_individuals","x":1}')" 422
check "submit with a body other than {}" "$(api POST "$IND/c1/products/p1/submit" '{"a":1}')" 422
HEIC=$(printf '\000\000\000\030ftypheic\000\000\000\000mif1heic' | base64 -w0)
check "a HEIC photo" "$(api POST "$IND/c1/products/p1/documentation" "{\"document\":{\"document_type\":\"passport\",\"image_front\":\"$HEIC\"}}")" 422
check_match "says CryptoMate takes JPEG and PNG photos" "$(cat "$T/resp")" 'JPEG and PNG'
check "a declared type the bytes contradict" "$(api POST "$IND/c1/products/p1/documentation" "{\"document\":{\"document_type\":\"passport\",\"image_front\":\"data:image/png;base64,$JPEG\"}}")" 422
check "nothing refused reached CryptoMate" "$(mock_count)" "$n0"

# ---- Idempotency-Key on writes, scoped by route and path -----------------
check "create with a key" "$(api POST $IND "$(sed 's/mjuliabarber/idem1/' "$SEED")" -H 'Idempotency-Key: k-1')" 201
C2=$(id_of)
check "the same key again: replayed" "$(api POST $IND "$(sed 's/mjuliabarber/idem1/' "$SEED")" -H 'Idempotency-Key: k-1')" 201
check "marked Idempotent-Replayed" "$(resp_header Idempotent-Replayed)" true
check "the same key on another route is its own" "$(api POST "$IND/$C2/products" '{"subproduct":"cards_individuals"}' -H 'Idempotency-Key: k-1')" 201
check "replayed there too" "$(api POST "$IND/$C2/products" '{"subproduct":"cards_individuals"}' -H 'Idempotency-Key: k-1')" 201
check "replay marked" "$(resp_header Idempotent-Replayed)" true
check "a key on a read is ignored" "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN_A" -H 'Idempotency-Key: k-1' "$GW_URL$IND/$C2")" 200

# ---- the audit log: reads recorded, images only as digests ---------------
check_match "a read has a request record" "$(grep '"type":"request"' "$T/audit.log" | grep -c '"route":"individuals.get"')" '^[1-9]'
check_match "and an outcome record" "$(grep '"type":"outcome"' "$T/audit.log" | grep -c '"route":"individuals.get"')" '^[1-9]'
check_match "records name the path's client" "$(grep '"route":"products.submit"' "$T/audit.log" | head -n1)" "\"params\":\\{\"client_id\":\"$C\",\"product_request_id\":\"$P\"\\}"
up=$(grep '"type":"request"' "$T/audit.log" | grep '"route":"products.documentation"' | head -n1)
check_match "the upload record has the front's digest" "$up" "\"sha256\":\"$(sha "$T/front.jpg")\""
check_match "and the back's" "$up" "\"sha256\":\"$(sha "$T/back.png")\""
check_match "with the document type" "$up" '"document_type":"national_id"'
check "no image bytes in the log" "$(grep -c -F -e "$JPEG" -e "$PNG" "$T/audit.log")" 0
check_match "the create's outcome holds the new client id" "$(grep '"type":"outcome"' "$T/audit.log" | grep '"route":"individuals.create"' | head -n1)" "\"client_id\":\"$C\""
check_match "products.request's holds the request id" "$(grep '"type":"outcome"' "$T/audit.log" | grep '"route":"products.request"' | head -n1)" "\"product_request_id\":\"$P\""
rid=$(grep '"type":"outcome"' "$T/audit.log" | grep "\"client_id\":\"$C\"" | grep -o '"request_id":"[0-9a-f]*"' | head -n1)
check_match "the create's request id found" "$rid" '^"request_id":"[0-9a-f]{32}"$'
"$CMGATE_AUDIT" show --client-id "$C" "$T/audit.log" > "$T/one.jsonl"
check_match "show --client-id: the create's request record" "$(grep '"type":"request"' "$T/one.jsonl" | head -n1)" "$rid"
check_match "show --client-id: the upload" "$(cat "$T/one.jsonl")" '"route":"products.documentation"'
check_match "show --client-id: the delete" "$(cat "$T/one.jsonl")" '"route":"individuals.delete"'
check_nomatch "show --client-id: no other client" "$(cat "$T/one.jsonl")" "$C2"
check "the log verifies" "$("$CMGATE_AUDIT" verify --key-file "$T/audit.key" "$T/audit.log" >/dev/null 2>&1; echo $?)" 0

finish
