#!/bin/bash
# A damaged idempotency store (issue #12, defect 9): a data file cut
# short, zeroed, or with random bytes over its leaf pages.  Each time
# the gateway refuses to start, exits by itself (not by a signal: the
# store is checked before it is mapped, and read through in a child
# whose death is reported) and says which file and what to do; and
# cmgate-idem list exits non-zero with a message, never by a signal.
#
# The random bytes come from a seed, printed; IDEM_DAMAGE_SEED=N
# replays one run.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
IDEM=$top_builddir/src/cmgate-idem
SEED_RND=${IDEM_DAMAGE_SEED:-$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')}
echo "# seed: $SEED_RND (IDEM_DAMAGE_SEED=$SEED_RND to replay)"
start_mock
make_config
start_gw

# Enough keyed outcomes for several leaf pages.
for i in $(seq 1 20); do
	st=$(post "$SEED" -H "Idempotency-Key: k-damage-$i")
	[ "$st" = 200 ] || { fail "keyed request $i: $st"; break; }
done
stop_gw
check "clean stop" "$GW_RC" 0
cp -a "$T/idem.db" "$T/idem.pristine"
DATA=$T/idem.db/data.mdb

# run_gw: the gateway in the foreground, bounded: a store wrongly taken
# as sound leaves it running, which the timeout turns into 124.
run_gw() { # run_gw [TIMEOUT_S]
	: > "$T/gw.log"
	timeout "${1:-20}" "$CMGATE" -c "$T/cmgate.json" 2>>"$T/gw.log"
	GW_RC=$?
}
restore() { rm -rf "$T/idem.db"; cp -a "$T/idem.pristine" "$T/idem.db"; }

# refused NAME: the gateway and cmgate-idem both refuse the store as it is.
refused() {
	run_gw
	check_match "$1: the gateway exits with a status, not a signal ($GW_RC)" \
	    "$GW_RC" '^([1-9]|[1-9][0-9]|1[01][0-9]|12[0-3])$'
	check_match "$1: the message names the file and says it is damaged" \
	    "$(cat "$T/gw.log")" "idem.db/data.mdb is damaged"
	check_match "$1: the message says what to do" \
	    "$(cat "$T/gw.log")" 'Move the folder .* aside.*results are lost.*README'
	check_nomatch "$1: not listening" "$(cat "$T/gw.log")" 'listening on'
	"$IDEM" -p "$T/idem.db" list > "$T/list.out" 2> "$T/list.err"
	rc=$?
	check "$1: cmgate-idem list exits 2 (store error), not by a signal" "$rc" 2
	check_match "$1: cmgate-idem says the store is damaged" \
	    "$(cat "$T/list.err")" 'data.mdb is damaged'
}

# ---- positive control: the intact store ------------------------------
"$IDEM" -p "$T/idem.db" list > "$T/list.out" 2> "$T/list.err"
check "intact: cmgate-idem list exits 0" "$?" 0
check "intact: 20 keys listed" "$(wc -l < "$T/list.out" | tr -d ' ')" 20
start_gw
st=$(post "$SEED" -H "Idempotency-Key: k-damage-7")
check "intact: a stored key replays after the check" \
    "$st/$(resp_header Idempotent-Replayed)" 200/true
stop_gw
check "intact: clean stop" "$GW_RC" 0
restore

size=$(stat -c %s "$DATA")
psize=$(od -An -tu4 -j 40 -N 4 "$DATA" | tr -d ' ')
check_match "data.mdb has several pages ($size bytes, page $psize)" \
    "$((size / psize))" '^([5-9]|[1-9][0-9]+)$'

# ---- truncated -----------------------------------------------------------
truncate -s $((size / 2)) "$DATA"
refused "truncated to half"
check_match "truncated: the message says so" "$(cat "$T/gw.log")" 'shorter than its header'
restore
truncate -s $((psize * 2 + 100)) "$DATA"
refused "truncated to its two meta pages"
restore
truncate -s 100 "$DATA"
refused "truncated inside its header"
restore

# ---- zeroed ----------------------------------------------------------------
dd if=/dev/zero of="$DATA" bs="$size" count=1 conv=notrunc status=none
refused "zeroed"
restore

# ---- random bytes over every leaf page (header kept) -----------------------
# The byte stream is AES-CTR of zeros keyed by the seed: the same seed,
# the same bytes.
rnd() { # rnd N: N deterministic bytes for the seed and the page
	openssl enc -aes-256-ctr -pass "pass:$SEED_RND-$2" -nosalt -pbkdf2 \
	    -in /dev/zero 2>/dev/null | head -c "$1"
}
leaves=0
for pg in $(seq 2 $((size / psize - 1))); do
	flags=$(od -An -tu2 -j $((pg * psize + 10)) -N 2 "$DATA" | tr -d ' ')
	[ $((flags & 2)) -ne 0 ] || continue
	leaves=$((leaves + 1))
	rnd $((psize - 16)) "$pg" |
	    dd of="$DATA" bs=$((psize - 16)) iflag=fullblock count=1 seek=$((pg * psize + 16)) oflag=seek_bytes conv=notrunc status=none
done
check_match "leaf pages overwritten ($leaves)" "$leaves" '^[1-9][0-9]*$'
refused "random bytes over the leaf pages"
echo "# the gateway said: $(tail -n 1 "$T/gw.log")"
restore

# ---- random bytes over one leaf page at a time ---------------------------
n=0
for pg in $(seq 2 $((size / psize - 1))); do
	flags=$(od -An -tu2 -j $((pg * psize + 10)) -N 2 "$T/idem.pristine/data.mdb" | tr -d ' ')
	[ $((flags & 2)) -ne 0 ] || continue
	n=$((n + 1))
	[ $n -le 3 ] || break
	restore
	rnd $((psize - 16)) "one-$pg" |
	    dd of="$DATA" bs=$((psize - 16)) iflag=fullblock count=1 seek=$((pg * psize + 16)) oflag=seek_bytes conv=notrunc status=none
	# A page no longer in use may be damaged harmlessly: then the
	# gateway starts (124 here), which is right too.
	run_gw 3
	check_match "leaf page $pg alone: no death by a signal ($GW_RC)" \
	    "$GW_RC" '^([0-9]|[1-9][0-9]|1[01][0-9]|12[0-4])$'
	"$IDEM" -p "$T/idem.db" list > "$T/list.out" 2> "$T/list.err"
	rc=$?
	check_match "leaf page $pg alone: cmgate-idem list no signal ($rc)" \
	    "$rc" '^[0-9]$'
done
restore

# ---- and the intact store still works ----------------------------------
start_gw
st=$(post "$SEED" -H "Idempotency-Key: k-damage-8")
check "restored: a stored key replays" \
    "$st/$(resp_header Idempotent-Replayed)" 200/true
finish
