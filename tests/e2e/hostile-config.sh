#!/bin/bash
# Hostile configs: a JSON null, a wrong type or an out-of-range value
# for a key is refused with a message naming the key (never a crash),
# by `cmgate -t` and by a SIGHUP reload, which keeps the running
# config.  (A null integer once crashed the parser: fuzz_config.)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config
cp "$T/cmgate.json" "$T/good.json"

refused() { # refused SED-EXPR KEY-REGEX
	sed "$1" "$T/good.json" > "$T/bad.json"
	out=$("$CMGATE" -t -c "$T/bad.json" 2>&1); rc=$?
	check "$2: exit 1, no crash" "$rc" 1
	check_match "$2: named" "$out" "$2: must"
}
refused 's/"epoch_s": [0-9]*/"epoch_s": null/' 'audit.epoch_s'
refused 's/"timeout_ms": [0-9]*/"timeout_ms": null/' 'upstream.timeout_ms'
refused 's/"rate_limit_per_sec": [0-9.]*/"rate_limit_per_sec": null/' 'upstream.rate_limit_per_sec'
refused 's/"required": [a-z]*/"required": null/' 'idempotency.required'
refused 's/"listen": "[^"]*"/"listen": null/' 'listen'
refused 's/"body": "[a-z]*"/"body": null/' 'audit.body'
refused 's/"max_body_bytes": [0-9]*/"max_body_bytes": 1/' 'limits.max_body_bytes'
refused 's/"max_body_bytes": [0-9]*/"max_body_bytes": 100000000000/' 'limits.max_body_bytes'
refused 's/"max_body_bytes": [0-9]*/"max_body_bytes": 1.5/' 'limits.max_body_bytes'
refused 's/"max_body_bytes": [0-9]*/"max_body_bytes": "64k"/' 'limits.max_body_bytes'
refused 's/"max_body_bytes": [0-9]*/"max_body_bytes": 99999999999999999999999/' 'limits.max_body_bytes'
# A nullable key takes null.
sed 's/"ca_file": null/"ca_file": null/' "$T/good.json" > "$T/ok.json"
"$CMGATE" -t -c "$T/ok.json" > /dev/null 2>&1
check "a nullable key (ca_file) takes null" "$?" 0

start_gw
sed 's/"epoch_s": [0-9]*/"epoch_s": null/' "$T/good.json" > "$T/cmgate.json"
kill -HUP "$GW_PID"
wait_for "$T/gw.log" 'reload failed' 40
check_match "the reload is refused" "$(cat "$T/gw.log")" 'reload failed.*audit.epoch_s'
check "the gateway keeps running" "$(kill -0 "$GW_PID" 2>/dev/null && echo yes)" yes
st=$(post "$SEED")
check "and serves with the old config" "$st" 200
finish
