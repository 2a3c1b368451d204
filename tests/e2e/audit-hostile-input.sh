#!/bin/bash
# cmgate-audit verify and the gateway's tail recovery against hostile
# input (issue 12, defects 6 and 7): a log with no record is
# unverifiable, whatever file it comes from (empty file, pipe,
# /dev/stdin); a pipe is read as a stream, so a tampered log read
# through one fails as it does from disk; and lines that claim a far
# epoch cost no key work: 1 MB of them verifies, and the gateway
# refuses to start on them, in well under a second.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
A=$CMGATE_AUDIT
vrc() { "$A" verify --key-file "$T/audit.key" "$@" > "$T/v.out" 2>&1; echo $?; }
# The time a megabyte of forged lines may take: unbounded, each line
# cost seconds of key evolution.
FORGED_MB_MS=1000

start_mock
make_config
start_gw
check "a request goes through" "$(post "$SEED")" 200
stop_gw
check "clean stop" "$GW_RC" 0
L=$T/audit.log
cp "$L" "$T/good.log"

# ---- defect 6: no record, or a non-regular file ----
: > "$T/empty.log"
check "an empty log is unverifiable" "$(vrc "$T/empty.log")" 2
check_match "... and says why" "$(cat "$T/v.out")" 'UNVERIFIABLE: no record'
check_nomatch "... never PASS" "$(cat "$T/v.out")" 'PASS'
check "an empty pipe is unverifiable" "$(vrc <(true))" 2
check "empty /dev/stdin is unverifiable" "$(vrc /dev/stdin < /dev/null)" 2
check "the good log passes from a pipe" "$(vrc <(cat "$L"))" 0
check "the good log passes on /dev/stdin" "$(vrc /dev/stdin < "$L")" 0
check_match "... with its records counted" "$(cat "$T/v.out")" \
    "$(wc -l < "$L") record\\(s\\) verified"
# Tamper with one record: the seq of line 2 moves on by one.
sed '2s/"seq":2,/"seq":3,/' "$L" > "$T/tampered.log"
check "a tampered log fails from disk" "$(vrc "$T/tampered.log")" 1
check "... and from a pipe" "$(vrc <(cat "$T/tampered.log"))" 1
check "... and on /dev/stdin" "$(vrc /dev/stdin < "$T/tampered.log")" 1
cat "$T/tampered.log" | "$A" verify --key-file "$T/audit.key" /dev/stdin \
    > "$T/v.out" 2>&1
check "... and through a shell pipe" "$?" 1
mkfifo "$T/fifo"
cat "$T/tampered.log" > "$T/fifo" &
catpid=$!
check "... and from a FIFO" "$(vrc "$T/fifo")" 1
wait $catpid
check "a folder is unverifiable" "$(vrc "$T")" 2

# ---- defect 7: 1 MB of lines claiming a far epoch ----
# Each is a copy of the last record with a far seq and an epoch just
# below it (so "one seal per record" does not rule it out).
forge() { # forge FILE: 1 MB of forged lines appended
	tail -n 1 "$L" | perl -ne 'chomp; $n = 0; $t = 0;
	    while ($t < 1048576) { ($x = $_) =~ s/"seq":\d+/"seq":@{[9000000000 + $n]}/;
	    $x =~ s/"epoch":\d+/"epoch":@{[16777000 - $n % 7]}/;
	    print "$x\n"; $t += length($x) + 1; $n++ }' >> "$1"
}
cp "$T/good.log" "$T/forged.log"
forge "$T/forged.log"
check_match "1 MB of forged lines" "$(stat -c %s "$T/forged.log")" '^1[0-9]{6}$'
within_ms $FORGED_MB_MS "verify: 1 MB of far-epoch lines" \
    "$A" verify --key-file "$T/audit.key" "$T/forged.log"
check "... fails" "$RUN_RC" 1
check_match "... as EPOCH_VIOLATION" "$(head -n 1 "$T/run.out")" \
    '^EPOCH_VIOLATION .*line='"$(($(wc -l < "$L") + 1))"' '
check_match "... every forged line named" "$(grep -c '^EPOCH_VIOLATION' "$T/run.out")" '^[0-9]{4,}$'
check_match "... the good records still verified" "$(cat "$T/run.out")" \
    "$(wc -l < "$L") record\\(s\\) verified"
# The same lines before the log's first record (no chain yet).
forge "$T/first.log"
cat "$T/good.log" >> "$T/first.log"
within_ms $FORGED_MB_MS "verify: 1 MB of far-epoch lines before the log" \
    "$A" verify --key-file "$T/audit.key" "$T/first.log"
check "... fails" "$RUN_RC" 1

# The gateway's tail recovery at start reads the same lines.
forge "$L"
: > "$T/gw.log"
within_ms $FORGED_MB_MS "gateway start on a log with 1 MB of forged lines" \
    "$CMGATE" -c "$T/cmgate.json"
check "... refuses to start" "$RUN_RC" 1
check_match "... and says why" "$(cat "$T/run.out")" 'EPOCH_VIOLATION'
finish
