#!/bin/bash
# Files the gateway trusts (issue 12, defect 14): the audit log, its key
# state and the idempotency store are never reached through a symbolic
# link; key files must be owned by the user cmgate runs as (checked on
# the open descriptor); the config must be writable by its owner alone
# and owned by root or that user (it names a seal command, run as that
# user); and `cmgate -t` fails on whatever the start fails on.  Each
# refusal is checked both ways: `cmgate -t` and the real start.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

# both_refuse DESCRIPTION REGEX: -t and the start exit 1 naming REGEX.
both_refuse() {
	local out rc
	out=$("$CMGATE" -t -c "$T/cmgate.json" 2>&1); rc=$?
	check "$1: cmgate -t fails" "$rc" 1
	check_match "... and says why" "$out" "$2"
	out=$(timeout 20 "$CMGATE" -c "$T/cmgate.json" 2>&1); rc=$?
	check "$1: the start fails" "$rc" 1
	check_match "... and says why" "$out" "$2"
}
both_pass() {
	local out rc
	out=$("$CMGATE" -t -c "$T/cmgate.json" 2>&1); rc=$?
	check "$1: cmgate -t passes" "$rc" 0
	[ $rc -eq 0 ] || echo "# $out"
}
reset() { # a fresh log and store, mode and owner as an operator has them
	rm -rf "$T/audit.log" "$T/audit.log.state" "$T/idem.db" "$T/elsewhere"*
	chmod 644 "$T/cmgate.json"; chmod 600 "$T/api-key" "$T/audit.key"
}

start_mock
make_config
both_pass "the test config"

# ---- -t fails where the start would ----
mv "$T/audit.key" "$T/audit.key.away"
both_refuse "no K0 for a new log" 'initial key: .*audit\.key: No such file'
mv "$T/audit.key.away" "$T/audit.key"
start_gw
stop_gw
mv "$T/audit.log.state" "$T/state.away"
both_refuse "a log without its key state" 'key state .* is missing'
mv "$T/state.away" "$T/audit.log.state"
echo garbage > "$T/audit.log.state.new" && chmod 600 "$T/audit.log.state.new"
cp "$T/audit.log.state" "$T/state.good"
cp "$T/audit.log.state.new" "$T/audit.log.state"
both_refuse "a damaged key state" 'not a valid state file'
cp "$T/state.good" "$T/audit.log.state"
both_pass "the state put back"

# ---- symbolic links ----
reset
: > "$T/elsewhere.log"
ln -s "$T/elsewhere.log" "$T/audit.log"
both_refuse "the audit log is a symlink" 'audit log .*symbolic link'
check "... nothing written where it points" "$(stat -c %s "$T/elsewhere.log")" 0
rm -f "$T/audit.log"
ln -s "$T/nowhere.log" "$T/audit.log"
both_refuse "the audit log is a dangling symlink" 'symbolic link'
check "... nothing created where it points" "$([ -e "$T/nowhere.log" ] && echo yes || echo no)" no

reset
start_gw
stop_gw
mv "$T/audit.log.state" "$T/elsewhere.state"
ln -s "$T/elsewhere.state" "$T/audit.log.state"
both_refuse "the key state is a symlink" 'key state .*symbolic link'

reset
mkdir -m 700 "$T/elsewhere.db"
ln -s "$T/elsewhere.db" "$T/idem.db"
both_refuse "the idempotency store is a symlink" 'idempotency.path: .*symbolic link'
check "... nothing created where it points" "$(ls "$T/elsewhere.db" | wc -l)" 0
reset
start_gw
stop_gw
mv "$T/idem.db/data.mdb" "$T/elsewhere.mdb"
ln -s "$T/elsewhere.mdb" "$T/idem.db/data.mdb"
both_refuse "the store's data file is a symlink" 'data\.mdb is a symbolic link'

# ---- the config: writable by its owner only ----
reset
chmod 664 "$T/cmgate.json"
both_refuse "a group-writable config" 'permissions 664 .*chmod go-w'
chmod 646 "$T/cmgate.json"
both_refuse "a world-writable config" 'permissions 646'
chmod 640 "$T/cmgate.json"
both_pass "a config readable by its group"
chmod 644 "$T/cmgate.json"

# A reload reads the same way: a config made writable meanwhile is not
# taken, and the gateway goes on with the one it has.
start_gw
chmod 666 "$T/cmgate.json"
kill -HUP "$GW_PID"
wait_for "$T/gw.log" 'reload failed' 100
check_match "a reload refuses a world-writable config" "$(grep 'reload failed' "$T/gw.log")" 'permissions 666'
check "... and keeps serving" "$(post "$SEED")" 200
chmod 644 "$T/cmgate.json"
stop_gw

# ---- owners (needs root to give a file away) ----
if [ "$(id -u)" -eq 0 ] && id nobody > /dev/null 2>&1; then
	reset
	chown nobody "$T/cmgate.json"
	both_refuse "a config owned by another user" 'cmgate.json: owned by uid [0-9]+, neither root nor'
	chown root "$T/cmgate.json"
	chown nobody "$T/api-key"
	both_refuse "an API key file owned by another user" 'api-key: owned by uid [0-9]+, not by the user'
	chown root "$T/api-key"
	chown nobody "$T/audit.key"
	both_refuse "K0 owned by another user" 'audit\.key: owned by uid'
	chown root "$T/audit.key"
	start_gw
	stop_gw
	chown nobody "$T/audit.log.state"
	both_refuse "a key state owned by another user" 'audit\.log\.state: owned by uid'
	chown root "$T/audit.log.state"
	# cmgate-audit reads K0 the same way
	chown nobody "$T/audit.key"
	"$CMGATE_AUDIT" verify --key-file "$T/audit.key" "$T/audit.log" > "$T/v.out" 2>&1
	check "cmgate-audit refuses K0 owned by another user" "$?" 2
	chown root "$T/audit.key"
	# a config owned by root, run as root, is fine (the quick start)
	both_pass "a root-owned config"
else
	echo "# not root: the owner checks are not exercised"
fi
# modes of key files, as before
chmod 640 "$T/api-key"
both_refuse "a group-readable API key file" 'api-key: permissions 640'
chmod 600 "$T/api-key"
finish
