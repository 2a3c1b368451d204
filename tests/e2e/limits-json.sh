#!/bin/sh
# Body limits from the config: limits.max_json_depth (json-c's depth:
# the top-level object is level 1, and a value may nest at most
# max_json_depth - 1 levels deep) and limits.max_string_length (in
# characters, not bytes), each exactly at the limit and one over.
. "$top_srcdir/tests/lib.sh"
start_mock
LIMITS_EXTRA=', "max_json_depth": 3, "max_string_length": 12' make_config
start_gw

body() { # body CITY [EXTRA-MEMBERS]
	printf '{"first_name":"Maria","last_name":"Barber","email":"m@ex.com","birth_date":"1984-11-21","address":{"street_line1":"Florida 9860","city":"%s","postal_code":"1669","state":"B","country":"ARG"}%s}' "$1" "${2:-}"
}

# Depth: the body itself needs 2 levels (the object, and address).
st=$(post_json "$(body "Del Viso")")
check "two levels (address) with max_json_depth 3" "$st" 200
st=$(post_json "$(body "Del Viso" ',"second_name":["x"]')")
check "a third level is the limit: parsed, then a field error" "$st $(json_field "$T/resp" code)" "422 validation_failed"
st=$(post_json "$(body "Del Viso" ',"second_name":[["x"]]')")
check "a fourth level is too deep" "$st $(json_field "$T/resp" code)" "400 invalid_json"
check_match "and says so" "$(cat "$T/resp")" 'too deep'
st=$(post_json "$(body "Del Viso" ',"second_name":{"a":{"b":1}}')")
check "objects count like arrays" "$st $(json_field "$T/resp" code)" "400 invalid_json"

# Strings: 12 characters pass, 13 do not; a character is a code point.
st=$(post_json "$(body "Abcdefghijkl")")
check "12-character city (max_string_length 12)" "$st" 200
st=$(post_json "$(body "Abcdefghijklm")")
check "13-character city" "$st $(json_field "$T/resp" code)" "422 validation_failed"
check_match "names the field and the limit" "$(cat "$T/resp")" '"field":"address.city","message":"must be at most 12 characters"'
st=$(post_json "$(body "ÉéÉéÉéÉéÉéÉé")")
check "12 two-byte characters (24 bytes)" "$st" 200
st=$(post_json "$(body "ÉéÉéÉéÉéÉéÉéÉ")")
check "13 two-byte characters" "$st" 422
st=$(post_json "$(body "Abc" ',"second_name":"Abcdefghijklm"')")
check "the cap applies to every string field" "$st" 422
check_match "second_name named" "$(cat "$T/resp")" '"field":"second_name"'
check "nothing over a limit reached the upstream" "$(mock_count)" 3
finish
