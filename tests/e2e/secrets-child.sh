#!/bin/bash
# What the seal command and other readers of the process get (issue 12,
# defect 8): the child of audit.seal_command runs with a clean
# environment (no CRYPTOMATE_API_KEY, a minimal PATH) and only
# descriptors 0-2; every descriptor the gateway holds above 2 (audit
# log, LMDB data file, sockets, libevent's signal pair) is close-on-exec;
# and a key given in CRYPTOMATE_API_KEY is gone from the gateway's own
# environment (/proc/PID/environ) once read.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

start_mock
EPOCH_S=1 make_config
# The key from the environment, not the file; a seal command that shows
# what it was given: its environment and its open descriptors, listed
# by the process itself (a shell's own redirections would show).
cat > "$T/probe.pl" <<'PERL'
my @seal = <STDIN>;
opendir(D, "/proc/self/fd") or die;
for my $n (sort { $a <=> $b } grep { /^\d+$/ } readdir(D)) {
	my $l = readlink("/proc/self/fd/$n") // "?";
	next if $l =~ m{^/proc/\d+/fd$};	# the listing's own
	push @fd, "$n $l\n";
}
closedir(D);
open(E, ">", "$ARGV[1]/seal.env") or die;
print E map { "$_=$ENV{$_}\n" } sort keys %ENV;
close(E);
open(F, ">", "$ARGV[1]/seal.fds.tmp") or die;
print F @fd;
close(F);
rename("$ARGV[1]/seal.fds.tmp", "$ARGV[1]/seal.fds");
PERL
SEAL="exec perl -e 'do \$ARGV[0]; die \$@ if \$@' $T/probe.pl $T"
sed -i -e '/"api_key_file"/d' \
    -e "s#\"audit\": {#\"audit\": { \"seal_command\": \"$SEAL\",#" "$T/cmgate.json"
export CRYPTOMATE_API_KEY=$API_KEY
export CMGATE_TEST_MARKER=inherited-$$
start_gw
unset CRYPTOMATE_API_KEY CMGATE_TEST_MARKER
check "a request goes through with the key from the environment" \
    "$(post "$SEED")" 200
check "... the key reached upstream" "$(grep -c "$API_KEY" "$T/mock.log")" 1

wait_for "$T/seal.fds" . 100 || fail "the seal command did not run"
check "the seal command has no CRYPTOMATE_API_KEY" \
    "$(grep -c CRYPTOMATE_API_KEY "$T/seal.env")" 0
check "... nor the key's value" "$(grep -c -- "$API_KEY" "$T/seal.env")" 0
check "... nor anything else the gateway was started with" \
    "$(grep -c CMGATE_TEST_MARKER "$T/seal.env")" 0
check "... a minimal PATH only" \
    "$(grep -v '^\(PWD\|SHLVL\|_\|OLDPWD\)=' "$T/seal.env" | sed 's/=.*//' | tr '\n' ' ')" "PATH "
check "the seal command has only fds 0-2" "$(cut -d' ' -f1 "$T/seal.fds" | tr '\n' ' ')" "0 1 2 "
sed 's/^/# seal command fd /' "$T/seal.fds"

# The gateway's own descriptors: all above 2 close-on-exec.
leaky=
for f in /proc/$GW_PID/fd/*; do
	n=${f##*/}
	[ "$n" -gt 2 ] || continue
	fl=$(awk '/^flags:/ { print $2 }' "/proc/$GW_PID/fdinfo/$n" 2>/dev/null) || continue
	[ -n "$fl" ] || continue
	if [ $(( 8#$fl & 8#2000000 )) -eq 0 ]; then
		leaky="$leaky $n->$(readlink "$f")"
	fi
done
check "every gateway descriptor above 2 is close-on-exec" "${leaky:-none}" none
check_match "... the LMDB data file among them" \
    "$(ls -l /proc/$GW_PID/fd/ | grep -c 'idem.db')" '^[1-9]'

# Under a tool (valgrind) the process is the tool, whose own copy of the
# starting environment /proc shows: the check needs the gateway itself.
if [ -z "${CMGATE_WRAPPER:-}" ]; then
	check "the key is gone from the gateway's environment" \
	    "$(tr '\0' '\n' < /proc/$GW_PID/environ | grep -c -- "$API_KEY")" 0
	check "... and so is the variable" \
	    "$(tr '\0' '\n' < /proc/$GW_PID/environ | grep -c 'CRYPTOMATE_API_KEY')" 0
else
	echo "# skipped under a tool: /proc shows its environment, not the gateway's"
fi
# A reload reads the config again: the key must still be there.
kill -HUP "$GW_PID"
wait_for "$T/gw.log" 'reload' 100 || true
check "after a reload, requests still carry the key" "$(post "$SEED")" 200
stop_gw
check "clean stop" "$GW_RC" 0
finish
