#!/bin/bash
# conf/cmgate.service: `systemd-analyze verify` passes on it (skipped,
# 77, where systemd-analyze is missing), it carries the sandbox the
# deployment relies on, and its paths agree with the example config.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
UNIT=$top_srcdir/conf/cmgate.service
EXAMPLE=$top_srcdir/conf/cmgate.example.json
if ! command -v systemd-analyze > /dev/null 2>&1; then
	echo "# systemd-analyze not found: skipped"
	exit 77
fi

# verify checks that ExecStart's program exists: point it at the build.
sed "s#/usr/local/bin/cmgate#$CMGATE#g" "$UNIT" > "$T/cmgate.service"
out=$(systemd-analyze verify --man=no "$T/cmgate.service" 2>&1); rc=$?
check "systemd-analyze verify exit code" "$rc" 0
check "systemd-analyze verify says nothing" "$out" ""
# ... and it does notice a mistake, so the two checks above mean something.
sed 's/^ProtectSystem=strict/ProtectSystem=strictly/' "$T/cmgate.service" > "$T/bad.service"
out=$(systemd-analyze verify --man=no "$T/bad.service" 2>&1)
check_match "verify catches a bad value" "$out" 'protect system value'

for line in 'User=cmgate' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
    'StateDirectory=cmgate' 'LoadCredential=audit.key:/etc/cmgate/audit.key' \
    'MemoryDenyWriteExecute=yes' 'SystemCallFilter=@system-service' \
    'SystemCallFilter=~@privileged @resources @keyring @memlock @setuid @chown' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'CapabilityBoundingSet=' \
    'ExecReload=/usr/local/bin/cmgate -t -c /etc/cmgate/cmgate.json' \
    'ExecReload=/bin/kill -HUP $MAINPID'; do
	check "unit has $line" "$(grep -c -x -F -- "$line" "$UNIT")" 1
done
check_match "unit sets a file-creation mask" "$(grep '^UMask=' "$UNIT")" '^UMask=0077$'

# The unit and the example config agree.
check "ExecStart reads /etc/cmgate/cmgate.json" \
    "$(grep -c '^ExecStart=/usr/local/bin/cmgate -c /etc/cmgate/cmgate.json$' "$UNIT")" 1
check "the audit log is in the StateDirectory" \
    "$(grep -c '"path": "/var/lib/cmgate/audit.log"' "$EXAMPLE")" 1
check "K0 comes from the unit's credential" \
    "$(grep -c '"key_file": "/run/credentials/cmgate.service/audit.key"' "$EXAMPLE")" 1
check "the idempotency store is in the StateDirectory" \
    "$(grep -c '"path": "/var/lib/cmgate/idempotency.db"' "$EXAMPLE")" 1

# systemd's own exposure score (offline mode needs systemd >= 250).
if out=$(systemd-analyze security --offline=yes "$T/cmgate.service" 2>/dev/null); then
	score=$(printf '%s\n' "$out" | sed -n 's/.*exposure level for .*: \([0-9.]*\).*/\1/p')
	echo "# systemd-analyze security: exposure $score"
	check "exposure level under 2.0 (\"OK\")" \
	    "$(awk -v s="$score" 'BEGIN { print (s != "" && s < 2.0) ? "yes" : "no (" s ")" }')" yes
fi
finish
