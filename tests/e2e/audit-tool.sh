#!/bin/bash
# cmgate-audit as an auditor runs it: keygen, verify (exit codes, the
# finding names, --json, --strict, --anchor), show and its filters,
# digest, on logs written by the gateway's own writer (tests/audit-gen).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
GEN=$top_builddir/tests/audit-gen
A=$CMGATE_AUDIT

# Flip, delete, swap, duplicate lines with perl (in perl-base).
flip() { # flip FILE OFFSET OUT
	perl -e 'local $/; open F, "<", $ARGV[0] or die; $d = <F>;
	    substr($d, $ARGV[1], 1) = chr(ord(substr($d, $ARGV[1], 1)) ^ 1);
	    open O, ">", $ARGV[2] or die; print O $d' "$1" "$2" "$3"
}
lines() { # lines FILE OUT PERLEXPR-on-@l
	perl -e 'open F, "<", $ARGV[0] or die; @l = <F>; '"$3"'
	    open O, ">", $ARGV[1] or die; print O @l' "$1" "$2"
}
vrc() { "$A" verify --key-file "$K" "$@" > "$T/v.out" 2>&1; echo $?; }

# ---- keygen ----
"$A" --help > "$T/help" 2>&1
check "--help exits 0" "$?" 0
check_match "--help lists verify" "$(cat "$T/help")" 'verify --key-file'
"$A" > /dev/null 2>&1
check "no command is a usage error" "$?" 3
"$A" verify "$T/nothing" > /dev/null 2>&1
check "verify without --key-file is a usage error" "$?" 3

K=$T/k0
"$A" keygen "$K" 2> "$T/kg.err"
check "keygen exits 0" "$?" 0
check "K0 is 0600" "$(stat -c %a "$K")" 600
check_match "K0 is 64 hex digits" "$(cat "$K")" '^[0-9a-f]{64}$'
cp "$K" "$T/k0.copy"
"$A" keygen "$K" 2> "$T/kg2.err"
check "keygen refuses to overwrite" "$?" 2
check "K0 unchanged" "$(cat "$K")" "$(cat "$T/k0.copy")"

# ---- a log from the writer ----
mkdir -p "$T/g" && cp "$K" "$T/g/k0"
"$GEN" gen "$T/g" --requests 60 --seal-every 10 > "$T/gen.out" 2> "$T/gen.err"
check "audit-gen wrote the log" "$?" 0
L=$T/g/audit.log
N=$(wc -l < "$L")
check "verify: a clean log passes" "$(vrc "$L")" 0
check_match "summary names the range" "$(cat "$T/v.out")" "record\(s\) verified in 1 file\(s\), seq 1\.\.$N,"
check_match "no unsealed tail after a clean stop" "$(cat "$T/v.out")" 'no unsealed tail'
check_match "PASS" "$(tail -n 1 "$T/v.out")" '^PASS$'
HEAD=$(sed -n 's/^head \([0-9]*:[0-9a-f]*\)$/\1/p' "$T/v.out")
check_match "the head is printed as SEQ:HEX" "$HEAD" "^$N:[0-9a-f]{64}\$"
check "the head is the SHA-256 of the last line" "${HEAD#*:}" \
    "$(tail -n 1 "$L" | sha256sum | cut -d' ' -f1)"

"$A" verify --json --key-file "$K" "$L" > "$T/v.json"
check "--json exits 0" "$?" 0
check_match "--json result" "$(cat "$T/v.json")" '^\{"result":"pass","findings":\[\],"summary":\{'
check "--json is one line" "$(wc -l < "$T/v.json")" 1

# ---- damage ----
# every byte of record 20 (a flipped newline merges it with 21)
start=$(head -n 19 "$L" | wc -c)
len=$(sed -n 20p "$L" | wc -c)
missed=0 misnamed=0 o=0
while [ $o -lt "$len" ]; do
	flip "$L" $((start + o)) "$T/f.log"
	if [ "$(vrc "$T/f.log")" != 1 ]; then missed=$((missed + 1))
	elif ! grep -Eq '^(MODIFIED|TORN_TAIL) seq=20([ .]|$)' "$T/v.out"; then
		misnamed=$((misnamed + 1)); fi
	o=$((o + 1))
done
check "every byte of seq 20 flipped: all detected" "$missed" 0
check "... each named as seq 20" "$misnamed" 0

lines "$L" "$T/d.log" 'splice(@l, 29, 1);'
check "a deleted line fails" "$(vrc "$T/d.log")" 1
check_match "... as MISSING seq=30" "$(cat "$T/v.out")" '^MISSING seq=30 '
lines "$L" "$T/s.log" '@l[29,30] = @l[30,29];'
check "swapped lines fail" "$(vrc "$T/s.log")" 1
check_match "... as REORDERED seq=30" "$(cat "$T/v.out")" '^REORDERED seq=30 '
lines "$L" "$T/u.log" 'splice(@l, 30, 0, $l[29]);'
check "a duplicated line fails" "$(vrc "$T/u.log")" 1
check_match "... as DUPLICATE seq=30" "$(cat "$T/v.out")" '^DUPLICATE seq=30 '
lines "$L" "$T/x.log" '$x = $l[29]; $x =~ s/"mac":"[0-9a-f]{8}/"mac":"00000000/; splice(@l, 30, 0, $x);'
check "an inserted forged line fails" "$(vrc "$T/x.log")" 1
check_match "... as FORGED" "$(cat "$T/v.out")" '^FORGED .*line=31 '

# ---- truncation ----
size=$(wc -c < "$L")
head -c $((size - 10)) "$L" > "$T/t1.log"
check "a cut inside the last record fails" "$(vrc "$T/t1.log")" 1
check_match "... as TORN_TAIL seq=$N" "$(cat "$T/v.out")" "^TORN_TAIL seq=$N "
head -n $((N - 2)) "$L" > "$T/t2.log"
check "a clean cut before the last seal passes" "$(vrc "$T/t2.log")" 0
check_match "... reported as an unsealed tail" "$(cat "$T/v.out")" 'unsealed tail: [0-9]+ record'
check "... but not with --strict" "$(vrc --strict "$T/t2.log")" 1
check "... nor against the exported head" "$(vrc --anchor "$HEAD" "$T/t2.log")" 1
check_match "... TRUNCATED" "$(cat "$T/v.out")" "^TRUNCATED seq=$N"
check "the full log agrees with its head" "$(vrc --anchor "$HEAD" "$L")" 0
check "a malformed anchor is a usage error" "$(vrc --anchor 5:xyz "$L")" 3

# ---- unverifiable ----
"$A" keygen "$T/other" 2>/dev/null
"$A" verify --key-file "$T/other" "$L" > "$T/v.out" 2>&1
check "the wrong key: unverifiable" "$?" 2
check_match "... said plainly" "$(cat "$T/v.out")" 'no record verifies'
check "an unreadable log: unverifiable" "$(vrc "$T/none.log")" 2
cp "$K" "$T/k0.open" && chmod 644 "$T/k0.open"
"$A" verify --key-file "$T/k0.open" "$L" > /dev/null 2>&1
check "a group-readable key is refused" "$?" 2

# ---- show ----
rid=$(grep -m1 '"type":"request"' "$L" | sed 's/.*"request_id":"\([0-9a-f]*\)".*/\1/')
check "show --request-id: request and outcome" \
    "$("$A" show --request-id "$rid" "$L" | wc -l)" 2
check "show --type seal" "$("$A" show --type seal "$L" | wc -l)" \
    "$(grep -c '"type":"seal"' "$L")"
check "show --caller" "$("$A" show --caller onboarding "$L" | wc -l)" \
    "$(grep -c '"caller":"onboarding"' "$L")"
check "show --since the future" "$("$A" show --since 2999-01-01 "$L" | wc -l)" 0
check "show prints records as stored" "$("$A" show "$L" | sha256sum)" "$(sha256sum < "$L")"

# ---- a crash leaves requests open; the next start closes them ----
mkdir -p "$T/c" && cp "$K" "$T/c/k0"
"$GEN" gen "$T/c" --requests 12 --open 3 --crash > /dev/null 2>&1
check "a crashed log verifies" "$(vrc "$T/c/audit.log")" 0
check "... with its open requests as information" "$(grep -c '^OPEN ' "$T/v.out")" 2
"$GEN" gen "$T/c" --requests 2 > /dev/null 2>&1
check "after a restart it verifies" "$(vrc "$T/c/audit.log")" 0
check "... with no request left open" "$(grep -c '^OPEN ' "$T/v.out")" 0
check "... and abandoned outcomes" "$(grep -c '"error_class":"abandoned"' "$T/c/audit.log")" 2

# ---- rotated files: one chain, given in any order ----
mkdir -p "$T/r" && cp "$K" "$T/r/k0"
"$GEN" gen "$T/r" --requests 80 --max-bytes 8192 > /dev/null 2>&1
ROT=$(ls "$T"/r/audit.log.0* | sort -r)
nrot=$(echo "$ROT" | wc -l)
check_range "rotation made several files" "$nrot" 3 1000000
check "all files verify as one chain" "$(vrc "$T/r/audit.log" $ROT)" 0
check_match "... from seq 1" "$(cat "$T/v.out")" "seq 1\.\."
check "a glob that takes in the state file too" "$(vrc "$T"/r/audit.log*)" 0
check_match "... skips it" "$(cat "$T/v.out")" 'skipping .*audit\.log\.state'
second=$(echo "$ROT" | sort | sed -n 2p)
check "a file left out is found" "$(vrc "$T/r/audit.log" $(echo "$ROT" | grep -v "$second"))" 1
check_match "... as MISSING" "$(cat "$T/v.out")" '^MISSING seq='
check "the live file alone verifies" "$(vrc "$T/r/audit.log")" 0
check_match "... as a chain that begins later" "$(cat "$T/v.out")" 'earlier files not given'

# ---- digest: an auditor proves a body matches ----
mkdir -p "$T/b" && cp "$K" "$T/b/k0"
printf '{"first_name":"Ada","last_name":"Lovelace","address":{"country":"GBR"}}' > "$T/body.json"
"$GEN" gen "$T/b" --requests 2 --body-file "$T/body.json" > /dev/null 2>&1
logid=$(head -n 1 "$T/b/audit.log" | sed 's/.*"log":"\([0-9a-f]*\)".*/\1/')
inlog=$(grep -m1 '"type":"request"' "$T/b/audit.log" | sed 's/.*"body_digest":"\([0-9a-f]*\)".*/\1/')
mine=$("$A" digest --key-file "$K" --log-id "$logid" "$T/body.json")
check "digest matches the log's body_digest" "$mine" "$inlog"
printf '{"first_name":"Eve","last_name":"Lovelace","address":{"country":"GBR"}}' > "$T/body2.json"
check_nomatch "another body does not" "$("$A" digest --key-file "$K" --log-id "$logid" "$T/body2.json")" "^$inlog\$"
finish
