#!/bin/bash
# conf/ and the documentation: the example config holds every key that
# `cmgate --help` lists, each one commented, passes `cmgate -t` and
# runs; the quick start's config passes -t; --help on both binaries;
# the man pages render cleanly and document every key, option, signal
# and command.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
EXAMPLE=$top_srcdir/conf/cmgate.example.json
MAN=$top_srcdir/man

# ---- --help ------------------------------------------------------------
"$CMGATE" --help > "$T/help.txt" 2>&1
check "cmgate --help exits 0" "$?" 0
sed -n '/^Config keys/,$p' "$T/help.txt" | awk 'NR > 1 && NF { print $1 }' > "$T/keys"
n=$(wc -l < "$T/keys" | tr -d ' ')
check "--help lists the config keys" "$([ "$n" -ge 40 ] && echo yes || echo "no ($n)")" yes
"$CMGATE_AUDIT" --help > "$T/ahelp.txt" 2>&1
check "cmgate-audit --help exits 0" "$?" 0
check_match "cmgate-audit --help" "$(head -n1 "$T/ahelp.txt")" '^usage: cmgate-audit COMMAND'

# ---- the example config ------------------------------------------------
# Every key of --help, by its last component: a name used in several
# sections ("path", "listen", "max_connections") must appear as often.
missing=
for leaf in $(sed 's/.*\.//' "$T/keys" | sort | uniq -c | awk '{ print $2 ":" $1 }'); do
	name=${leaf%:*}; want=${leaf#*:}
	have=$(grep -c "^ *\"$name\":" "$EXAMPLE")
	[ "$have" -ge "$want" ] || missing="$missing $name"
done
check "example config has every key" "$missing" ""
# Every key line has a comment on the line before (or on itself); a
# section opener needs none, nor do the members of a callers entry.
uncommented=$(awk '
	/^[ \t]*\/\// { c = 1; next }
	/^[ \t]*"callers"/ { inc = 1 }
	inc { if ($0 ~ /^[ \t]*\]/) inc = 0; c = 0; next }
	/^[ \t]*"[a-z_0-9]+"[ \t]*:.*[{[][ \t]*$/ { c = 0; next }
	/^[ \t]*"[a-z_0-9]+"[ \t]*:/ { if (!c && $0 !~ /\/\//) print FNR ": " $0 }
	{ c = 0 }' "$EXAMPLE" | head -n 5)
check "every key in the example is commented" "$uncommented" ""

# With the systemd paths moved into the test folder, it passes -t ...
sed -e "s#/etc/cmgate/#$T/#g" -e "s#/var/lib/cmgate/#$T/#g" \
    -e "s#/run/credentials/cmgate.service/#$T/#g" "$EXAMPLE" > "$T/example.json"
( umask 077; printf 'cm-example-%s\n' "$$" > "$T/api-key" )
"$CMGATE_AUDIT" keygen "$T/audit.key" > /dev/null 2>&1
out=$("$CMGATE" -t -c "$T/example.json" 2>&1); rc=$?
check "cmgate -t on the example config" "$rc" 0
[ $rc -eq 0 ] || echo "# $out"
# ... fails -t on a typo (so the check above means something) ...
sed 's/"epoch_s"/"epoch_sec"/' "$T/example.json" > "$T/typo.json"
out=$("$CMGATE" -t -c "$T/typo.json" 2>&1)
check_match "a typo in it fails -t" "$out" 'audit.epoch_sec: unknown key'
# ... and runs.
sed -e 's/"listen": "127.0.0.1:8080"/"listen": "127.0.0.1:0"/' \
    -e 's/"listen": "127.0.0.1:8081"/"listen": "127.0.0.1:0"/' \
    "$T/example.json" > "$T/cmgate.json"
start_gw
MPORT=$(sed -n 's/.*serving \/metrics on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/gw.log" | head -n1)
check "example config: /healthz" "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")" 200
check "example config: /metrics on its own port" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/metrics")" 200
stop_gw
check "example config: clean exit" "$GW_RC" 0

# ---- the quick start's config ------------------------------------------
mkdir -p "$T/qs/conf" "$T/qs/run"
cp "$top_srcdir/conf/quickstart.json" "$T/qs/conf/"
( umask 077; printf 'cm-quick-%s\n' "$$" > "$T/qs/run/api-key" )
# as scripts/quickstart.sh does before its -t: the start needs K0
"$CMGATE_AUDIT" keygen "$T/qs/run/audit.key" 2> /dev/null
out=$("$CMGATE" -t -c "$T/qs/conf/quickstart.json" 2>&1); rc=$?
check "cmgate -t on conf/quickstart.json" "$rc" 0
[ $rc -eq 0 ] || echo "# $out"

# ---- man pages ------------------------------------------------------------
for page in cmgate.8 cmgate.json.5 cmgate-audit.1 cmgate-idem.1; do
	check "man page $page exists" "$([ -f "$MAN/$page" ] && echo yes)" yes
	if command -v groff > /dev/null 2>&1; then
		out=$(groff -mdoc -ww -z -Tutf8 "$MAN/$page" 2>&1)
		check "$page renders without a warning" "$out" ""
	fi
done
# cmgate.json(5): every key of --help under its section.
awk '/^\.Ss / { s = $2; if (s == "Top") s = ""; next }
     /^\.It Ic / { print (s == "" ? "" : s ".") $3 }' "$MAN/cmgate.json.5" | sort -u > "$T/man-keys"
check "cmgate.json(5) documents every key" "$(sort -u "$T/keys" | comm -23 - "$T/man-keys" | tr '\n' ' ')" ""
# cmgate(8): options and signals.
for w in 'Fl c Ar' 'Fl t ,' 'Fl V ,' 'Fl h ,' 'Dv SIGHUP' 'Dv SIGTERM' 'Dv SIGUSR1' \
    '/metrics' '/healthz' 'shutdown_timeout_ms'; do
	check "cmgate(8) mentions $w" "$(grep -c -F -- "$w" "$MAN/cmgate.8" | sed 's/^[1-9][0-9]*$/yes/')" yes
done
# cmgate-audit(1): every command and verify finding of its --help.
for w in keygen verify show digest $(grep -o '[A-Z][A-Z_]*[A-Z]' "$T/ahelp.txt" | grep -v -E '^(COMMAND|OPTIONS|FILE|LOG|SEQ|HEAD|ID|NAME|TIME|TYPE|JSON|MAC|UTC|ISO)$' | sort -u); do
	check "cmgate-audit(1) mentions $w" "$(grep -c -w -- "$w" "$MAN/cmgate-audit.1" | sed 's/^[1-9][0-9]*$/yes/')" yes
done
# cmgate-idem(1): every command and option of its usage.
ihelp=$("$top_builddir/src/cmgate-idem" 2>&1 || true)
for w in list show forget --unknown --body; do
	check "cmgate-idem usage names $w" "$(grep -c -w -- "$w" <<<"$ihelp" | sed 's/^[1-9][0-9]*$/yes/')" yes
	check "cmgate-idem(1) mentions $w" "$(sed 's/Fl -/--/g' "$MAN/cmgate-idem.1" | grep -c -w -- "$w" | sed 's/^[1-9][0-9]*$/yes/')" yes
done
finish
