#!/bin/bash
# mock-kyc.sh: the mock CryptoMate's eleven individual-client routes
# (tests/mock-upstream.c, "KYC routes"), spoken to directly: their
# shapes, errors and the product-request state machine, the SHA-256 it
# records of each uploaded image, and a 30 MB body accepted.  The
# gateway's own routes are tested through cmgate elsewhere; this keeps
# the mock they run against honest.
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null 2>&1 || command -v base64 >/dev/null || exit 77

start_mock -u
B=$MOCK_URL/management/clients/individuals
K=(-H "x-api-key: $API_KEY" -H 'Content-Type: application/json')
req() { # req METHOD PATH [BODY-FILE]: status in $st, body in $T/r
	local data=()
	[ $# -ge 3 ] && data=(--data-binary "@$3")
	st=$(curl -s -o "$T/r" -w '%{http_code}' -X "$1" "${K[@]}" "${data[@]}" "$B$2")
}
field() { json_field "$T/r" "$1"; }

# Create (echo + stored), list, get, duplicate.
printf '%s' '{"first_name":"Lucia","last_name":"Gomez","email":"lucia@example.org","birth_date":"1991-03-07","address":{"street_line1":"Av. Pellegrini 1500","city":"Rosario","postal_code":"2000","state":"ARG-S","country":"ARG"}}' > "$T/c.json"
req POST "" "$T/c.json"
check "create 201-class" "$st" 200
cid=$(field id)
check_match "create returns an id" "$cid" '^[A-Za-z0-9]{32}$'
check "create status pending" "$(field status)" pending
req POST "" "$T/c.json"
check "duplicate client 400" "$st/$(field code)" 400/VAL
check "duplicate message" "$(field message)" "Company client already exists for this company"
req GET ""
check "list 200" "$st" 200
check_match "list is an array holding the client" "$(cat "$T/r")" "^\[\{\"id\":\"$cid\""
req GET "/$cid"
check "get 200" "$st/$(field email)" 200/lucia@example.org
req GET "/nope123"
check "get unknown 404" "$st/$(field code)" 404/NOT_FOUND
check "404 message" "$(field message)" "Company client not found with id: nope123"
req PATCH "/$cid"
check "wrong method 405" "$st" 405

# Countries and identifications.
req GET /countries
check "countries 200" "$st" 200
check_match "countries shape" "$(cat "$T/r")" '^\{"count":[0-9]+,"data":\[\{"name":"Argentina","alpha3":"ARG","postal_code_format":"[^"]*","subdivisions":\[\{"name":"Buenos Aires","code":"ARG-B"\}'
req GET /identifications/AR
check "identifications AR" "$st/$(field type)" 200/DNI
req GET /identifications/ZZ
check "identifications unknown 404" "$st/$(field message)" "404/Country not found or no identification types available"
req PUT /countries
check "PUT countries 405" "$st" 405

# Product request: 412, 201 pending_documentation, 409 active.
printf '{"subproduct":"ramps_pix"}' > "$T/p.json"
req POST "/$cid/products" "$T/p.json"
check "invalid product 412" "$st/$(field code)/$(field message)" "412/VAL/Invalid product"
printf '{"subproduct":"cards_individuals"}' > "$T/p.json"
req POST "/$cid/products" "$T/p.json"
check "product request 201" "$st/$(field status)" 201/pending_documentation
pid=$(field id)
check_match "missing a national_id with number metadata" "$(cat "$T/r")" '"valid_documents":\[\{"id":"national_id".*"require_back_image":true,"metadata":\[\{"id":"number"'
check_match "missing the phone data" "$(cat "$T/r")" '"data":\[\{"id":"phone"'
req POST "/$cid/products" "$T/p.json"
check "active request 409" "$st/$(field message)" "409/An enablement request is already active for this product"
req POST "/nope/products" "$T/p.json"
check "product for unknown client 404" "$st" 404

# Submit too early: listed, not advanced.
: > "$T/empty"
req POST "/$cid/products/$pid/submit" "$T/empty"
check "early submit 200" "$st" 200
check_match "early submit stays pending" "$(cat "$T/r")" '"status":"pending_documentation"'
check_match "early submit lists what is missing" "$(cat "$T/r")" '"rejected_items":\[\{"type":"document","key":"identity"'

# Uploads: a PDF comes back rejected; a national_id without its back too.
b64() { base64 -w0 "$1"; }
printf '\xff\xd8\xff\xe0\x00\x10JFIF\x00front' > "$T/front.jpg"
printf '\x89PNG\r\n\x1a\n\x00back' > "$T/back.png"
printf '%%PDF-1.4\n' > "$T/doc.pdf"
printf '{"document":{"document_type":"national_id","image_front":"data:application/pdf;base64,%s","image_back":"%s","metadata":{"number":"1"}}}' "$(b64 "$T/doc.pdf")" "$(b64 "$T/back.png")" > "$T/u1.json"
req POST "/$cid/products/$pid/documentation" "$T/u1.json"
check "pdf upload answered" "$st" 200
check_match "pdf in rejected_items" "$(cat "$T/r")" '"rejected_items":\[\{"type":"document","key":"national_id","reason":"Only JPG and PNG'
printf '{"document":{"document_type":"national_id","image_front":"data:image/jpeg;base64,%s","metadata":{"number":"30111222"}}}' "$(b64 "$T/front.jpg")" > "$T/u2.json"
req POST "/$cid/products/$pid/documentation" "$T/u2.json"
check_match "missing back in rejected_items" "$(cat "$T/r")" 'image_back is required for national_id'
printf '{"document":{"document_type":"national_id","image_front":"data:image/jpeg;base64,%s","image_back":"data:image/png;base64,%s","metadata":{"number":"30111222"}}}' "$(b64 "$T/front.jpg")" "$(b64 "$T/back.png")" > "$T/u3.json"
req POST "/$cid/products/$pid/documentation" "$T/u3.json"
check_match "good upload clears the documents" "$(cat "$T/r")" '"documents":\[\],"data":\[\{"id":"phone"'
check_match "good upload: no rejected_items" "$(cat "$T/r")" '"rejected_items":\[\]'
curl -s "$MOCK_URL/__test/uploads" > "$T/up"
check_match "upload digests recorded" "$(cat "$T/up")" "\"image_front_sha256\":\"$(sha256sum < "$T/front.jpg" | cut -d' ' -f1)\",\"image_front_bytes\":$(wc -c < "$T/front.jpg" | tr -d ' '),\"image_back_sha256\":\"$(sha256sum < "$T/back.png" | cut -d' ' -f1)\""
check_match "third upload accepted" "$(cat "$T/up")" '"accepted":true\}\]$'

# The phone through PUT (a full replacement), then submit: in_kyc.
sed 's/}}$/},"phone_country_code":54,"phone_number":3415550100}/' "$T/c.json" > "$T/c2.json"
req PUT "/$cid" "$T/c2.json"
check "update 200, same id" "$st/$(field id)" "200/$cid"
req POST "/$cid/products/$pid/submit" "$T/empty"
check_match "submit to in_kyc" "$(cat "$T/r")" '"status":"in_kyc"'
req POST "/$cid/products/$pid/submit" "$T/empty"
check "second submit 409" "$st/$(field message)" "409/The enablement request is not pending documentation"
req POST "/$cid/products/$pid/documentation" "$T/u3.json"
check "upload after submit 409" "$st" 409

# Review outcome (test-only), listing newest first, a new request after a rejection.
st=$(curl -s -o "$T/r" -w '%{http_code}' -X POST -d '{"status":"rejected","rejection_code":"DOC_UNREADABLE","rejection_description":"Blurry"}' "$MOCK_URL/__test/products/$pid/state")
check "test state endpoint" "$st/$(field status)" 200/rejected
req GET "/$cid/products"
check_match "rejected request listed with its reason" "$(cat "$T/r")" '"rejection_code":"DOC_UNREADABLE","rejection_description":"Blurry"'
req POST "/$cid/products" "$T/p.json"
check "new request after a rejection" "$st" 201
pid2=$(field id)
curl -s -X POST -d '{"status":"enabled"}' "$MOCK_URL/__test/products/$pid2/state" > "$T/r"
check "enabled by the test endpoint" "$(field status)" enabled
req GET "/$cid/products"
check_match "list newest first" "$(cat "$T/r")" "^\[\{\"id\":\"$pid2\""
req POST "/$cid/products/$pid2/nope" "$T/empty"
check "unknown sub-route 404" "$st" 404
req POST "/$cid/products/unknownpid/submit" "$T/empty"
check "unknown product request 404" "$st/$(field code)" 404/NOT_FOUND

# A 30 MB upload (two ~11 MB images in base64) is taken, digested, logged small.
head -c 11000000 /dev/urandom > "$T/big.bin"
printf '\xff\xd8\xff' | dd of="$T/big.bin" conv=notrunc 2>/dev/null
{ printf '{"document":{"document_type":"passport","image_front":"data:image/jpeg;base64,'; b64 "$T/big.bin"; printf '","image_back":"'; b64 "$T/big.bin"; printf '","metadata":{"number":"X1"}}}'; } > "$T/big.json"
check_match "body is about 30 MB" "$(wc -c < "$T/big.json")" '^29[0-9]{6}$'
req POST "/$cid/products" "$T/p.json" # pid2 is enabled: 409, fine
curl -s -X POST -d '{"status":"pending_documentation"}' "$MOCK_URL/__test/products/$pid2/state" >/dev/null
req POST "/$cid/products/$pid2/documentation" "$T/big.json"
check "30 MB upload 200" "$st" 200
curl -s "$MOCK_URL/__test/uploads" > "$T/up"
check_match "30 MB image digest recorded" "$(cat "$T/up")" "\"image_front_sha256\":\"$(sha256sum < "$T/big.bin" | cut -d' ' -f1)\",\"image_front_bytes\":11000000"
check_match "30 MB body logged as a digest" "$(tail -n1 "$T/mock.log")" '"body":"\{\\"omitted_bytes\\":29[0-9]{6},\\"sha256\\":\\"[0-9a-f]{64}\\"\}"'
rm -f "$T/big.bin" "$T/big.json"

# Delete: 204, then 404; reset empties everything.
req DELETE "/$cid"
check "delete 204, empty" "$st/$(wc -c < "$T/r" | tr -d ' ')" 204/0
req DELETE "/$cid"
check "second delete 404" "$st" 404
st=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: wrong" "$B")
check "wrong key 401" "$st" 401
curl -s -X POST "$MOCK_URL/_mock/reset" >/dev/null
req GET ""
check "reset empties the store" "$(cat "$T/r")" "[]"
finish
