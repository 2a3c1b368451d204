#!/bin/bash
# String fields and integer fields over HTTP (issue #12, defects 12 and
# 13): names that only look blank are empty, line/paragraph separators
# and bidirectional controls are refused, Unicode white space is
# trimmed and collapsed before the body goes upstream, and an integer
# too large for its field is that field's 422, not 400 invalid_json.
# Each refused row names its field; nothing refused reaches the mock.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
start_gw

V='{"first_name":"Maria","last_name":"Barber","email":"m@example.com","birth_date":"1984-11-21","address":{"street_line1":"Florida 9860","city":"Del Viso","postal_code":"1669","state":"ARG-B","country":"ARG"}'
A='"email":"m@example.com","birth_date":"1984-11-21","address":{"street_line1":"Florida 9860","city":"Del Viso","postal_code":"1669","state":"ARG-B","country":"ARG"}'

# frow STATUS CODE FIELD NAME BODY: BODY as is (JSON escapes stay JSON
# escapes); the answer's status, code and first error field.
frow() {
	printf '%s' "$5" > "$T/row.json"
	st=$(post "$T/row.json")
	f=$(json_field "$T/resp" field)
	c=$(json_field "$T/resp" code)
	check "$4" "$st ${c:--} ${f:--}" "$1 $2 $3"
}

# ---- defect 12: blank-looking, separators, bidi ---------------------
frow 422 validation_failed first_name "first_name U+00A0 only" \
    "{\"first_name\":\"\\u00a0\",\"last_name\":\"B\",$A}"
frow 422 validation_failed first_name "first_name U+200B only" \
    "{\"first_name\":\"\\u200b\",\"last_name\":\"B\",$A}"
frow 422 validation_failed first_name "first_name raw U+200B only" \
    "{\"first_name\":\"$(printf '\342\200\213')\",\"last_name\":\"B\",$A}"
frow 422 validation_failed last_name "last_name of spaces, BOM, word joiner" \
    "{\"first_name\":\"M\",\"last_name\":\"\\u3000\\ufeff\\u2060\\u2003\",$A}"
frow 422 validation_failed first_name "U+2028 in first_name" \
    "{\"first_name\":\"Ma\\u2028ria\",\"last_name\":\"B\",$A}"
frow 422 validation_failed address.city "U+2029 in address.city" \
    "{\"first_name\":\"M\",\"last_name\":\"B\",\"email\":\"m@example.com\",\"birth_date\":\"1984-11-21\",\"address\":{\"street_line1\":\"Florida 9860\",\"city\":\"x\\u2029y\",\"postal_code\":\"1669\",\"state\":\"ARG-B\",\"country\":\"ARG\"}}"
frow 422 validation_failed first_name "U+202E (RLO) in first_name" \
    "{\"first_name\":\"\\u202eairaM\",\"last_name\":\"B\",$A}"
frow 422 validation_failed last_name "U+2066 (LRI) in last_name" \
    "{\"first_name\":\"M\",\"last_name\":\"a\\u2066b\",$A}"
frow 422 validation_failed second_name "raw U+202A in second_name" \
    "$V,\"second_name\":\"a$(printf '\342\200\252')b\"}"
frow 422 validation_failed address.street_line1 "U+2069 in street_line1" \
    "${V%%\"street_line1\"*}\"street_line1\":\"F\\u2069 9860\",\"city\":\"Del Viso\",\"postal_code\":\"1669\",\"state\":\"ARG-B\",\"country\":\"ARG\"}}"
check_match "the message names the rule, not the value" \
    "$(cat "$T/resp")" 'bidirectional'
check_nomatch "the message does not echo the value" "$(cat "$T/resp")" '9860'

# ---- defect 13: integers too large for the field --------------------
frow 422 validation_failed phone_number "20-digit phone_number" \
    "$V,\"phone_country_code\":54,\"phone_number\":12345678901234567890}"
frow 422 validation_failed phone_number "phone_number 2^64" \
    "$V,\"phone_country_code\":54,\"phone_number\":18446744073709551616}"
frow 422 validation_failed phone_number "phone_number below int64" \
    "$V,\"phone_country_code\":54,\"phone_number\":-9223372036854775809}"
frow 422 validation_failed phone_country_code "25-digit phone_country_code" \
    "$V,\"phone_country_code\":1234567890123456789012345,\"phone_number\":1168860622}"
frow 400 invalid_json - "a malformed number is still invalid JSON" \
    "$V,\"phone_country_code\":54,\"phone_number\":0123}"
check "nothing refused reached the upstream" "$(mock_count)" 0

# ---- accepted: Unicode white space is trimmed and collapsed ---------
frow 200 - - "NBSP and ideographic spaces around and inside a name" \
    "{\"first_name\":\"\\u00a0Maria\\u3000\\u2003Julia\\u202f\",\"last_name\":\"Barber\",$A}"
check "it reached the upstream" "$(mock_count)" 1
check_match "the name went upstream trimmed and collapsed" \
    "$(tail -n1 "$T/mock.log")" 'first_name.{2,6}Maria Julia."'
frow 200 - - "a zero-width joiner inside a name stays" \
    "{\"first_name\":\"\\u0915\\u094d\\u200d\\u0937\",\"last_name\":\"Barber\",$A}"
check_match "the joiner went upstream" \
    "$(tail -n1 "$T/mock.log")" "first_name.{2,6}$(printf '\340\244\225\340\245\215\342\200\215\340\244\267')"
check "gateway process still alive" "$(kill -0 "$GW_PID" 2>/dev/null && echo yes)" yes
finish
