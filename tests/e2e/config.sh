#!/bin/bash
# Config checking (-t), the API key sources, and refusals that name the key.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
MOCK_URL=http://127.0.0.1:9 make_config

out=$("$CMGATE" -t -c "$T/cmgate.json" 2>&1); rc=$?
check "-t on a good config" "$rc" 0
check_match "-t says ok" "$out" 'successful'
out=$("$CMGATE" --version); check_match "--version" "$out" '^cmgate [0-9]'
out=$("$CMGATE" --help); check_match "--help lists keys" "$out" 'upstream.timeout_ms'

bad() { # bad DESCRIPTION SED-EXPR REGEX
	sed "$2" "$T/cmgate.json" > "$T/bad.json"
	out=$("$CMGATE" -t -c "$T/bad.json" 2>&1); rc=$?
	check "$1 fails -t" "$([ $rc -ne 0 ] && echo nonzero)" nonzero
	check_match "$1 message" "$out" "$3"
}
bad "unknown top key" 's/"listen"/"lisen"/' 'lisen: unknown key'
bad "unknown nested key" 's/"timeout_ms"/"timeout_msec"/' 'upstream.timeout_msec: unknown key'
bad "wrong type" 's/"timeout_ms": [0-9]*/"timeout_ms": "5s"/' 'upstream.timeout_ms: must be an integer'
bad "out of range" 's/"timeout_ms": [0-9]*/"timeout_ms": 0/' 'upstream.timeout_ms: must be 1..'
bad "bad token hash" 's/"token_sha256": "[0-9a-f]*"/"token_sha256": "abc"/' 'callers\[0\].token_sha256'
bad "non-loopback http" 's#"base_url": "[^"]*"#"base_url": "http://api.cryptomate.me"#' 'upstream.base_url: plain http'
bad "broken JSON" 's/"listen"/listen/' 'invalid JSON'
bad "bad audit.body" 's/"body": "digest"/"body": "everything"/' 'audit.body: must be one of'

# The API key: file (trimmed), else CRYPTOMATE_API_KEY, else refuse.
sed 's/"api_key_file": "api-key",//' "$T/cmgate.json" > "$T/nokey.json"
out=$(env -u CRYPTOMATE_API_KEY "$CMGATE" -t -c "$T/nokey.json" 2>&1); rc=$?
check "no key at all refuses" "$([ $rc -ne 0 ] && echo nonzero)" nonzero
check_match "no key message" "$out" 'CRYPTOMATE_API_KEY'
out=$(CRYPTOMATE_API_KEY=from-env "$CMGATE" -t -c "$T/nokey.json" 2>&1); rc=$?
check "key from the environment" "$rc" 0
chmod 644 "$T/api-key"
out=$("$CMGATE" -t -c "$T/cmgate.json" 2>&1); rc=$?
check "world-readable key file refused" "$([ $rc -ne 0 ] && echo nonzero)" nonzero
check_match "permission message" "$out" 'too open'
check_nomatch "message does not print the key" "$out" "$API_KEY"
chmod 600 "$T/api-key"

# Relative paths resolve against the config file's folder.
mkdir -p "$T/elsewhere"
out=$(cd "$T/elsewhere" && "$CMGATE" -t -c ../cmgate.json 2>&1); rc=$?
check "relative paths from another cwd" "$rc" 0
finish
