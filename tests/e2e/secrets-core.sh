#!/bin/bash
# The API key lives in the gateway's memory, so by default no core dump
# may be written (RLIMIT_CORE 0) and the process is not dumpable
# (PR_SET_DUMPABLE 0): another process of the same user can read
# neither its memory nor its environment.  "core_dumps": true turns
# both back on.
#
# Dumpability is seen from /proc: the files of a non-dumpable process
# belong to root, and a process of the same user is refused.  Run as
# root, the gateway is started as nobody so the difference shows.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock
make_config

if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
	RUN_AS="setpriv --reuid=65534 --regid=65534 --clear-groups"
	chown -R 65534:65534 "$T"
	chmod 755 "$T"
	uid=65534
else
	RUN_AS=""
	uid=$(id -u)
fi
WRAP=${CMGATE_WRAPPER:-}
# The test's own limit is generous, so a 0 can only come from cmgate.
ulimit -c unlimited 2>/dev/null || ulimit -c 1000000 2>/dev/null
soft=$(ulimit -c)

core_limit() { awk '/^Max core file size/ { print $5, $6 }' "/proc/$GW_PID/limits"; }
proc_owner() { stat -c %u "/proc/$GW_PID/status"; }
peer_reads_environ() { # can a process of the gateway's user read it?
	$RUN_AS sh -c "cat /proc/$GW_PID/environ >/dev/null 2>&1" && echo yes || echo no
}

CMGATE_WRAPPER="$RUN_AS $WRAP" start_gw
check "gateway runs as uid $uid" "$(awk '/^Uid:/ { print $2 }' "/proc/$GW_PID/status")" "$uid"
check "core file size limit is 0 (soft and hard)" "$(core_limit)" "0 0"
check "its /proc files belong to root (not dumpable)" "$(proc_owner)" 0
check "a process of the same user cannot read its environment" "$(peer_reads_environ)" no
st=$(post "$SEED")
check "and it serves" "$st" 200
stop_gw
check "clean exit" "$GW_RC" 0

# The operator's switch: "core_dumps": true.
sed -i 's#^  "listen"#  "core_dumps": true,\n  "listen"#' "$T/cmgate.json"
CMGATE_WRAPPER="$RUN_AS $WRAP" start_gw
[ "$soft" = unlimited ] && want="unlimited unlimited" || want=$(core_limit)
check "core_dumps true: the inherited limit stays" "$(core_limit)" "$want"
check "core_dumps true: dumpable (files belong to uid $uid)" "$(proc_owner)" "$uid"
check "core_dumps true: the same user can read it" "$(peer_reads_environ)" yes
finish
