#!/bin/bash
# Least privilege (README "Least privilege"): route scopes (callers[].allow)
# and client ownership (callers[].clients), against the stateful mock.
#
#   onboarding  allow ["*"], clients own   creates and reaches its clients
#   backoffice  allow individuals.*, products.*, clients own
#   recon       allow ["*"], clients all   reaches every client
#   creator     no allow: individuals.create only (the old default)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

TOKEN_C=tok-recon-$$-qrstuv
TOKEN_D=tok-creator-$$-wxyzab
IND=/management/clients/individuals
CALLER_A_EXTRA=', "allow": ["*"]'
CALLER_B_EXTRA=', "allow": ["individuals.*", "products.*"]'
MORE_CALLERS=", { \"name\": \"recon\", \"token_sha256\": \"$(sha256_hex "$TOKEN_C")\", \"allow\": [\"*\"], \"clients\": \"all\" },
    { \"name\": \"creator\", \"token_sha256\": \"$(sha256_hex "$TOKEN_D")\" }"
start_mock -s 201
make_config
start_gw

# api TOKEN METHOD PATH [BODY]: one call; prints the status, the body is
# left in $T/resp, the headers in $T/resp.h.
api() {
	local tok=$1 m=$2 p=$3
	if [ $# -ge 4 ]; then
		curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -X "$m" \
		    -H "Authorization: Bearer $tok" \
		    -H 'Content-Type: application/json' --data-binary "$4" \
		    "$GW_URL$p"
	else
		curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' -X "$m" \
		    -H "Authorization: Bearer $tok" "$GW_URL$p"
	fi
	keep_answer "$T/resp.h" "$T/resp"
}
id_of() { grep -o '"id":"[A-Za-z0-9_-]*"' "$T/resp" | head -n1 | cut -d'"' -f4; }
mval() { curl -s "$GW_URL/metrics" | awk -v k="$1" 'index($0, k " ") == 1 { v = $NF } END { print (v == "" ? 0 : v) }'; }
client_body() { # client_body EMAIL
	sed "s/mjuliabarber@example.com/$1/" "$SEED"
}
DOC='{"document":{"document_type":"national_id","image_front":"/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==","metadata":{"number":"1"}}}'

# ---- route scopes --------------------------------------------------------
check "creator may create" "$(api "$TOKEN_D" POST $IND "$(client_body d1@example.com)")" 201
DCLIENT=$(id_of)
n0=$(mock_count)
for r in "GET $IND" "GET $IND/$DCLIENT" "PUT $IND/$DCLIENT" "DELETE $IND/$DCLIENT" \
    "GET $IND/countries" "GET $IND/identifications/AR" \
    "POST $IND/$DCLIENT/products" "GET $IND/$DCLIENT/products" \
    "POST $IND/$DCLIENT/products/p1/documentation" \
    "POST $IND/$DCLIENT/products/p1/submit"; do
	set -- $r
	case $1 in
	PUT) st=$(api "$TOKEN_D" "$1" "$2" "$(client_body d1@example.com)") ;;
	POST) st=$(api "$TOKEN_D" "$1" "$2" '{}') ;;
	*) st=$(api "$TOKEN_D" "$1" "$2") ;;
	esac
	check "creator: $r is 403" "$st" 403
	check_match "creator: $r names caller and route" "$(cat "$T/resp")" '"code":"forbidden","message":"caller .creator. may not use route (individuals|products)\.[a-z]+"'
done
check "no refused call reached CryptoMate" "$(mock_count)" "$n0"
check "forbidden counted" "$(mval 'cmgate_forbidden_total{caller="creator",route="individuals.get",reason="forbidden_route"}')" 1
# 403 comes before a malformed path parameter (422) and before the body.
check "403 before 422" "$(api "$TOKEN_D" GET "$IND/bad%24id")" 403
check "401 before 403" "$(api nobody GET "$IND/$DCLIENT")" 401

# ---- ownership -----------------------------------------------------------
check "onboarding creates" "$(api "$TOKEN_A" POST $IND "$(client_body a1@example.com)")" 201
X=$(id_of)
check_match "the create's outcome record names the client" "$(cat "$T/audit.log")" "\"client_id\":\"$X\""
check "onboarding reads its client" "$(api "$TOKEN_A" GET "$IND/$X")" 200
check "onboarding requests the product" "$(api "$TOKEN_A" POST "$IND/$X/products" '{"subproduct":"cards_individuals"}')" 201
P=$(id_of)

n0=$(mock_count)
check "backoffice: get other's client" "$(api "$TOKEN_B" GET "$IND/$X")" 404
cp "$T/resp" "$T/notmine"
check "backoffice: update other's client" "$(api "$TOKEN_B" PUT "$IND/$X" "$(client_body a1@example.com)")" 404
check "backoffice: delete other's client" "$(api "$TOKEN_B" DELETE "$IND/$X")" 404
check "backoffice: request product for other's client" "$(api "$TOKEN_B" POST "$IND/$X/products" '{"subproduct":"cards_individuals"}')" 404
check "backoffice: list other's products" "$(api "$TOKEN_B" GET "$IND/$X/products")" 404
check "backoffice: upload for other's client" "$(api "$TOKEN_B" POST "$IND/$X/products/$P/documentation" "$DOC")" 404
check "backoffice: submit other's request" "$(api "$TOKEN_B" POST "$IND/$X/products/$P/submit")" 404
check "none of backoffice's refused calls reached CryptoMate" "$(mock_count)" "$n0"
check "not_owner counted" "$(mval 'cmgate_forbidden_total{caller="backoffice",route="individuals.get",reason="not_owner"}')" 1
check_match "the reject record says not_owner" "$(grep '"reason":"not_owner"' "$T/audit.log" | head -n1)" '"caller":"backoffice","route":"individuals.get","params":\{"client_id":"'"$X"'"\}'
check_match "the access log says not_owner" "$(grep '"reason":"not_owner"' "$T/gw.log" | head -n1)" '"status":404'

# Ids cannot be probed: a client that exists (not backoffice's) and one
# that does not give the same bytes but for the request id.
check "backoffice: get a client that does not exist" "$(api "$TOKEN_B" GET "$IND/nosuchclient123")" 404
strip() { sed 's/"request_id":"[0-9a-f]*"//' "$1"; }
check "not-owned and missing are byte-identical" "$(strip "$T/notmine")" "$(strip "$T/resp")"
check_nomatch "the message does not echo the id" "$(cat "$T/notmine")" "$X"

# Lists: each "own" caller sees its own clients only; recon sees all.
check "backoffice creates" "$(api "$TOKEN_B" POST $IND "$(client_body b1@example.com)")" 201
Y=$(id_of)
check "backoffice lists" "$(api "$TOKEN_B" GET $IND)" 200
check_nomatch "backoffice's list lacks onboarding's client" "$(cat "$T/resp")" "$X"
check_match "backoffice's list has its own client" "$(cat "$T/resp")" "\"id\":\"$Y\""
check_match "the outcome record counts the withheld entries" "$(grep '"route":"individuals.list"' "$T/audit.log" | grep '"type":"outcome"' | tail -n1)" '"withheld":[1-9]'
check "onboarding lists" "$(api "$TOKEN_A" GET $IND)" 200
check_match "onboarding's list has its client" "$(cat "$T/resp")" "\"id\":\"$X\""
check_nomatch "onboarding's list lacks backoffice's" "$(cat "$T/resp")" "\"id\":\"$Y\""
check "recon lists" "$(api "$TOKEN_C" GET $IND)" 200
check_match "recon sees onboarding's client" "$(cat "$T/resp")" "\"id\":\"$X\""
check_match "recon sees backoffice's client" "$(cat "$T/resp")" "\"id\":\"$Y\""
# CryptoMate's error answer to a list is no list: no filter can read it,
# so an "own" caller gets its status without its body; an "all" caller
# gets it as sent.
next_list() { curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary "$1" "$MOCK_URL/__test/list"; }
next_list "{\"status\":500,\"body\":\"{\\\"error\\\":\\\"boom\\\",\\\"seen\\\":[{\\\"id\\\":\\\"$Y\\\"}]}\"}"
check "onboarding's list on CryptoMate's 500" "$(api "$TOKEN_A" GET $IND)" 500
check_match "its code says the answer is withheld" "$(cat "$T/resp")" '"code":"upstream_answer_withheld"'
check_nomatch "the error body does not reach it" "$(cat "$T/resp")" "$Y"
next_list "{\"status\":500,\"body\":\"{\\\"error\\\":\\\"boom\\\",\\\"seen\\\":[{\\\"id\\\":\\\"$Y\\\"}]}\"}"
check "recon's list on CryptoMate's 500" "$(api "$TOKEN_C" GET $IND)" 500
check_match "recon gets CryptoMate's body" "$(cat "$T/resp")" "\"id\":\"$Y\""
# A number json-c cannot hold (it would come out as another number) in
# an entry the caller owns: the list is refused, not passed on changed.
next_list "{\"status\":200,\"body\":\"[{\\\"id\\\":\\\"$X\\\",\\\"n\\\":99999999999999999999}]\"}"
check "an entry with a number json-c clamps" "$(api "$TOKEN_A" GET $IND)" 502
check_nomatch "no changed number reaches the caller" "$(cat "$T/resp")" '18446744073709551615'
check "recon reads onboarding's client" "$(api "$TOKEN_C" GET "$IND/$X")" 200
check "recon lists its products" "$(api "$TOKEN_C" GET "$IND/$X/products")" 200

# ---- operators: assign and forget ---------------------------------------
# A client made outside cmgate (CryptoMate's portal) has no owner.
curl -s -o "$T/direct" -H "x-api-key: $API_KEY" -H 'Content-Type: application/json' \
    --data-binary "$(client_body portal@example.com)" "$MOCK_URL$IND"
Z=$(grep -o '"id":"[A-Za-z0-9_-]*"' "$T/direct" | head -n1 | cut -d'"' -f4)
check "an unowned client is not found for onboarding" "$(api "$TOKEN_A" GET "$IND/$Z")" 404
check "owners assign" "$("$top_builddir/src/cmgate-idem" -c "$T/cmgate.json" owners assign "$Z" onboarding >/dev/null 2>&1; echo $?)" 0
check "assigned: onboarding reaches it (running gateway)" "$(api "$TOKEN_A" GET "$IND/$Z")" 200
check_match "owners list shows it" "$("$top_builddir/src/cmgate-idem" -c "$T/cmgate.json" owners list --caller onboarding)" "\"client_id\":\"$Z\",\"caller\":\"onboarding\""
check "owners assign refuses a caller the config lacks" "$("$top_builddir/src/cmgate-idem" -c "$T/cmgate.json" owners assign "$Z" nobody >/dev/null 2>&1; echo $?)" 3
# Without -c the config cannot vouch for the name: the name itself is
# checked (it fills fixed buffers and the admin record).
IDEM_TOOL="$top_builddir/src/cmgate-idem"
long=$(printf 'n%.0s' $(seq 1 300))
check "owners assign -p refuses a name too long" "$("$IDEM_TOOL" -p "$T/idem.db" owners assign "$Z" "$long" 2>"$T/idem.err" >/dev/null; echo $?)" 3
check "owners assign -p refuses a name with a quote" "$("$IDEM_TOOL" -p "$T/idem.db" owners assign "$Z" 'on"x' 2>>"$T/idem.err" >/dev/null; echo $?)" 3
check "owners assign -p refuses an empty name" "$("$IDEM_TOOL" -p "$T/idem.db" owners assign "$Z" '' 2>>"$T/idem.err" >/dev/null; echo $?)" 3
check "owners assign -p refuses a terminal escape (not echoed)" "$("$IDEM_TOOL" -p "$T/idem.db" owners assign "$Z" "$(printf 'a\033[2Jb')" 2>>"$T/idem.err" >/dev/null; echo $?)" 3
check "the refusals echo neither name" "$(grep -c "$(printf '\033')\|nnnnnnnn\|on\"x" "$T/idem.err")" 0
check_match "owners list still shows onboarding's" "$("$IDEM_TOOL" -p "$T/idem.db" owners list)" "\"client_id\":\"$Z\",\"caller\":\"onboarding\""
check "owners forget" "$("$top_builddir/src/cmgate-idem" -c "$T/cmgate.json" owners forget "$Z" >/dev/null 2>&1; echo $?)" 0
check "forgotten: onboarding no longer reaches it" "$(api "$TOKEN_A" GET "$IND/$Z")" 404

# A delete's 204 removes the owner entry.
check_match "an owner entry before the delete" "$("$top_builddir/src/cmgate-idem" -c "$T/cmgate.json" owners list)" "\"client_id\":\"$X\""
check "onboarding deletes its client" "$(api "$TOKEN_A" DELETE "$IND/$X")" 204
check_nomatch "no owner left for it" "$("$top_builddir/src/cmgate-idem" -c "$T/cmgate.json" owners list)" "\"client_id\":\"$X\""

# ---- the operators' changes reach the audit log at the next start --------
stop_gw
check "the gateway stopped cleanly" "$GW_RC" 0
start_gw
"$CMGATE_AUDIT" show --type admin "$T/audit.log" > "$T/admin.jsonl"
check "two admin records (assign, forget)" "$(wc -l < "$T/admin.jsonl" | tr -d ' ')" 2
check_match "the assign is recorded" "$(head -n1 "$T/admin.jsonl")" "\"action\":\"owner_assign\",\"client_id\":\"$Z\",\"caller\":\"onboarding\",\"by\":"
check "the log verifies" "$("$CMGATE_AUDIT" verify --key-file "$T/audit.key" "$T/audit.log" >/dev/null 2>&1; echo $?)" 0

# ---- durability: killed right after the 201, the owner is kept ----------
for i in 1 2 3; do
	check "create $i" "$(api "$TOKEN_A" POST $IND "$(client_body k$i@example.com)")" 201
	K=$(id_of)
	kill -9 "$GW_PID"; wait "$GW_PID" 2>/dev/null; GW_PID=
	start_gw
	check "after kill -9 ($i), onboarding reaches its client" "$(api "$TOKEN_A" GET "$IND/$K")" 200
done

# ---- reload: a route taken away is refused for the next request ----------
check "backoffice reads its client" "$(api "$TOKEN_B" GET "$IND/$Y")" 200
sed -i 's/"allow": \["individuals.\*", "products.\*"\]/"allow": ["products.*"]/' "$T/cmgate.json"
n=$(grep -c '"msg":"reload' "$T/gw.log")
kill -HUP "$GW_PID"
wait_for_count() { local i=0; while [ "$(grep -c '"msg":"reload' "$T/gw.log")" -le "$n" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; }
wait_for_count
check "after the reload backoffice may not read clients" "$(api "$TOKEN_B" GET "$IND/$Y")" 403
check "it still lists its products" "$(api "$TOKEN_B" GET "$IND/$Y/products")" 200

# ---- cmgate -t names an unknown route ------------------------------------
sed 's/"allow": \["products.\*"\]/"allow": ["products.lsit"]/' "$T/cmgate.json" > "$T/bad.json"
out=$("$CMGATE" -t -c "$T/bad.json" 2>&1); rc=$?
check "cmgate -t refuses an unknown route name" "$rc" 1
check_match "and says which" "$out" 'callers\[1\] \("backoffice"\)\.allow: "products\.lsit" names no route'
sed 's/"allow": \["products.\*"\]/"allow": ["card.*"]/' "$T/cmgate.json" > "$T/bad.json"
check_match "a pattern that matches nothing is refused" "$("$CMGATE" -t -c "$T/bad.json" 2>&1)" '"card\.\*" names no route'

finish
