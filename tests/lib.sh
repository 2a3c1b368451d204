# tests/lib.sh: shared helpers for the end-to-end tests.
#
# Each test is a standalone script (tmux's regress style): a private
# temp folder, the real cmgate binary, the mock CryptoMate on loopback
# (port 0, read back from its output), curl as the caller, and the exit
# code as the verdict (0 pass, 1 fail, 77 skip, 99 hard error).
#
# Knobs: CMGATE_WRAPPER="valgrind ..." runs the gateway under a tool;
# SEED=N (or TEST_SEED=N) replays a randomized test (use_seed).
#
# Never sleep and then assert: wait for the condition (wait_for a log
# line, wait_until a command, wait_healthz, wait_metric), and give a
# timing its bounds with check_range rather than a regex.

set -u
# A numeric SEED in the environment is a random seed to replay (SEED is
# then reused below for the seed request's path).
case ${SEED:-} in
''|*[!0-9]*) ;;
*) : "${TEST_SEED:=$SEED}" ;;
esac
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
# Run by hand (bash tests/e2e/NAME.sh): the build is the current
# folder if it holds one (cd build && bash ../tests/e2e/NAME.sh), else
# the source tree (an in-tree build).
if [ -z "${top_builddir:-}" ] && [ -x src/cmgate ] && [ -x tests/mock-upstream ]; then
	top_builddir=$(pwd)
fi
: "${top_builddir:=$top_srcdir}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
CMGATE=$top_builddir/src/cmgate
CMGATE_AUDIT=$top_builddir/src/cmgate-audit
MOCK=$top_builddir/tests/mock-upstream
SEED=$top_srcdir/tests/data/seed.json
if [ ! -x "$CMGATE" ] || [ ! -x "$MOCK" ]; then
	echo "no build in $top_builddir: build first (scripts/build.sh), run from"
	echo "the build folder, or set top_builddir"
	exit 99
fi

# Configs and keys are made here as an operator would: cmgate refuses a
# config others can write, whatever the umask the suite runs under.
umask 022
T=$(mktemp -d "${TMPDIR:-/tmp}/cmgate-test.XXXXXX")
MOCK_PID=
GW_PID=
FAILS=0
CHECKS=0

# save_outputs: copy what the gateway produced (its log, answers, audit
# log, metrics, ...) to $OUTPUTS_DIR, where tests/e2e/secrets.sh greps
# them all for the API key and the caller tokens.  Left out: the key
# file, and files a test names *.secret (inputs that hold a secret on
# purpose).  The mock's files are kept as upstream.*: the key belongs
# there (it is the upstream header), a caller token does not.
OUTPUTS_DIR=${OUTPUTS_DIR:-$top_builddir/tests/outputs}
save_outputs() {
	local d f b
	[ "${SAVE_OUTPUTS:-yes}" = yes ] || return 0
	d=$OUTPUTS_DIR/$(basename "$0" .sh).$$
	mkdir -p "$d" || return 0
	find "$T" -type f ! -name 'api-key*' ! -name '*.secret' 2>/dev/null |
	while IFS= read -r f; do
		b=$(printf '%s' "${f#"$T"/}" | tr '/' '_')
		case $b in mock.*) b=upstream.${b#mock.} ;; esac
		cp -p "$f" "$d/$b" 2>/dev/null
	done
}

cleanup() {
	local rc=0
	# A gateway still running is stopped the way an operator would;
	# anything but a clean exit (a sanitizer report, valgrind's
	# --error-exitcode, a crash while draining) fails the test.
	if [ -n "$GW_PID" ] && kill -TERM "$GW_PID" 2>/dev/null; then
		wait "$GW_PID" 2>/dev/null; rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "FAIL: the gateway exited with status $rc on SIGTERM"
			FAILS=$((FAILS + 1))
		fi
	fi
	[ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null
	save_outputs
	if [ "$FAILS" -ne 0 ] && [ -n "${USED_SEED:-}" ]; then
		echo "# replay with: SEED=$USED_SEED bash $0"
	fi
	if [ "$FAILS" -ne 0 ] || [ -n "${KEEP_TMP:-}" ]; then
		echo "# kept $T for inspection"
		echo "# --- gateway log (tail) ---"; tail -n 30 "$T/gw.log" 2>/dev/null
	else
		rm -rf "$T"
	fi
	[ "$rc" -eq 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 99' INT TERM

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
check() { # check DESCRIPTION ACTUAL EXPECTED
	CHECKS=$((CHECKS + 1))
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}
check_match() { # check_match DESCRIPTION STRING EXTENDED-REGEX
	CHECKS=$((CHECKS + 1))
	if printf '%s' "$2" | grep -Eq -- "$3"; then ok "$1"
	else fail "$1: '$2' does not match /$3/"; fi
}
check_nomatch() {
	CHECKS=$((CHECKS + 1))
	if printf '%s' "$2" | grep -Eq -- "$3"; then fail "$1: '$2' matches /$3/"
	else ok "$1"; fi
}
# check_range DESCRIPTION VALUE MIN MAX: VALUE is an integer in
# [MIN, MAX] (timings in ms, counts).
check_range() {
	CHECKS=$((CHECKS + 1))
	case $2 in
	''|-|*[!0-9-]*|?*-*) fail "$1: '$2' is not an integer"; return ;;
	esac
	if [ "$2" -ge "$3" ] && [ "$2" -le "$4" ]; then ok "$1 ($2 in $3..$4)"
	else fail "$1: $2 is not in $3..$4"; fi
}
finish() {
	echo "# $CHECKS checks, $FAILS failed"
	[ "$CHECKS" -gt 0 ] || { echo "FAIL: no checks ran"; exit 1; }
	[ "$FAILS" -eq 0 ]
	exit $?
}

# wait_for FILE REGEX [TRIES]: poll (0.05 s steps) until FILE matches.
wait_for() {
	local i=0 tries=${3:-200}
	while [ $i -lt "$tries" ]; do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# wait_until [-n TRIES] COMMAND...: poll (0.05 s steps) until COMMAND
# succeeds, for at most TRIES x 0.05 s of wall-clock time (200: 10 s),
# however long each try takes on a busy machine; 1 if it never did.
wait_until() {
	local tries=200 end
	if [ "$1" = -n ]; then tries=$2; shift 2; fi
	end=$(( ${EPOCHREALTIME/[.,]/} + tries * 50000 ))
	while :; do
		"$@" 2>/dev/null && return 0
		[ "${EPOCHREALTIME/[.,]/}" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# healthz_matches REGEX: GET /healthz (blanks removed) matches REGEX.
healthz_matches() {
	curl -s "$GW_URL/healthz" | tr -d ' \n' | grep -Eq -- "$1"
}
# wait_healthz REGEX [TRIES]: until /healthz matches REGEX.
wait_healthz() { wait_until -n "${2:-200}" healthz_matches "$1"; }

# metric_value URL NAME: the value of the unlabelled sample NAME in the
# /metrics of URL (the gateway's, or a separate metrics port's).
metric_value() {
	curl -s "$1/metrics" | sed -n "s/^$2 \([0-9.e+-]*\)\$/\1/p" | head -n1
}
metric_is() { [ "$(metric_value "$1" "$2")" = "$3" ]; }
# wait_metric URL NAME VALUE [TRIES]: until the sample NAME is VALUE.
wait_metric() { wait_until -n "${4:-200}" metric_is "$1" "$2" "$3"; }

# use_seed: seed bash's RANDOM from $TEST_SEED (SEED=N in the
# environment) or a fresh one, and print it; a failing run prints how
# to replay it.
use_seed() {
	USED_SEED=${TEST_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
	echo "# SEED=$USED_SEED"
	RANDOM=$USED_SEED
}

API_KEY=cm-test-key-$$-0123456789
TOKEN_A=tok-onboarding-$$-abcdef
TOKEN_B=tok-backoffice-$$-ghijkl

start_mock() { # extra args are passed to the mock
	# Emptied before the start, not after: the redirection below runs
	# in the background child, and a second start_mock could meanwhile
	# read the first mock's "listening on" line (and then an empty
	# port); and a request that reaches a mock just up must stay in its
	# log (the mock appends to it).
	: > "$T/mock.out"
	: > "$T/mock.log"
	"$MOCK" -l 127.0.0.1:0 -k "$API_KEY" -L "$T/mock.log" "$@" \
	    >"$T/mock.out" 2>"$T/mock.err" &
	MOCK_PID=$!
	wait_for "$T/mock.out" "listening on" || { echo "mock did not start"; cat "$T/mock.err"; exit 99; }
	MOCK_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$T/mock.out" | head -n1)
	MOCK_URL=http://127.0.0.1:$MOCK_PORT
}

mock_behave() { curl -s -X POST -d "$1" "$MOCK_URL/_mock/behave" >/dev/null; }
mock_stats() { curl -s "$MOCK_URL/_mock/stats"; }
mock_count() { wc -l < "$T/mock.log" | tr -d ' '; }

sha256_hex() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# make_config: writes $T/cmgate.json.  Variables that change it:
#   RATE BURST MAX_QUEUE_WAIT MAX_QUEUED TIMEOUT_MS MAX_BODY EPOCH_S
#   AUDIT_BODY IDEM_REQUIRED EXTRA (raw JSON members added at top level)
#   CALLER_A_EXTRA CALLER_B_EXTRA (members added to caller A's or B's
#   object) MORE_CALLERS (", {...}" callers added to the list)
make_config() {
	printf '%s\n' "$API_KEY" > "$T/api-key"
	chmod 600 "$T/api-key"
	[ -f "$T/audit.key" ] || "$CMGATE_AUDIT" keygen "$T/audit.key" >/dev/null
	cat > "$T/cmgate.json" <<JSON
{
  // written by tests/lib.sh
  "listen": "127.0.0.1:0",
  "upstream": {
    "base_url": "${UPSTREAM_URL:-$MOCK_URL}",
    "api_key_file": "api-key",
    "ca_file": ${CA_FILE:-null},
    "connect_timeout_ms": ${CONNECT_TIMEOUT_MS:-2000},
    "timeout_ms": ${TIMEOUT_MS:-5000},
    "rate_limit_per_sec": ${RATE:-0},
    "burst": ${BURST:-1},
    "max_queue_wait_ms": ${MAX_QUEUE_WAIT:-10000},
    "max_queued": ${MAX_QUEUED:-1000}
  },
  "audit": { "path": "audit.log", "key_file": "audit.key",
             "epoch_s": ${EPOCH_S:-60}, "body": "${AUDIT_BODY:-digest}" },
  "callers": [
    { "name": "onboarding", "token_sha256": "$(sha256_hex "$TOKEN_A")" ${CALLER_A_EXTRA:-} },
    { "name": "backoffice", "token_sha256": "$(sha256_hex "$TOKEN_B")" ${CALLER_B_EXTRA:-} }
    ${MORE_CALLERS:-}
  ],
  "limits": { "max_body_bytes": ${MAX_BODY:-65536} ${LIMITS_EXTRA:-} },
  "idempotency": { "path": "idem.db", "required": ${IDEM_REQUIRED:-false} },
  "validation": { "min_age_years": 18 }
  ${EXTRA:-}
}
JSON
}

start_gw() {
	: > "$T/gw.log"
	${CMGATE_WRAPPER:-} "$CMGATE" -c "$T/cmgate.json" 2>>"$T/gw.log" &
	GW_PID=$!
	if ! wait_for "$T/gw.log" "listening on" 400; then
		echo "gateway did not start:"; cat "$T/gw.log"; exit 99
	fi
	GW_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$T/gw.log" | tail -n1)
	GW_URL=http://127.0.0.1:$GW_PORT
}

# log_settle: the access-log lines of a loop pass are written right
# after the pass, so a line can lag its answer by a moment.  An answer
# from a later pass (a /healthz, read after every earlier answer was
# received) means all of them are in $T/gw.log.  One loop only.
log_settle() { curl -s -o /dev/null "$GW_URL/healthz" || true; }

# mock_idle: the mock holds no request (delayed or hung ones answered).
mock_idle() { mock_stats | grep -q '"inflight":0[,}]'; }

# reload_gw: SIGHUP, then wait for one more "reload: config" line (a
# reload that loads; at log level warn wait on the metric instead).
reload_gw() {
	local n
	n=$(grep -c '"msg":"reload: config' "$T/gw.log")
	kill -HUP "$GW_PID"
	wait_until eval '[ "$(grep -c "\"msg\":\"reload: config" "$T/gw.log")" -gt '"$n"' ]'
}

stop_gw() { # SIGTERM and wait; sets GW_RC
	kill -TERM "$GW_PID" 2>/dev/null
	wait "$GW_PID"; GW_RC=$?
	GW_PID=
}

# post BODY_FILE [curl args...]: POST as caller A (or $TOKEN) with
# Content-Type $CT (default application/json); prints the status,
# leaves the body in $T/resp and headers in $T/resp.h
post() {
	local f=$1 rc; shift
	curl -s -o "$T/resp" -D "$T/resp.h" -w '%{http_code}' \
	    -H "Authorization: Bearer ${TOKEN:-$TOKEN_A}" \
	    -H "Content-Type: ${CT:-application/json}" \
	    --data-binary @"$f" "$@" "$GW_URL/management/clients/individuals"
	rc=$?
	keep_answer "$T/resp.h" "$T/resp"
	return $rc
}
# doc_body FILE BYTES: a products.documentation body whose front and
# back images are BYTES decoded bytes each (a JPEG signature, then random
# bytes); the images stay in FILE.front and FILE.back for checks.
doc_body() {
	local f=$1 n=$2
	{ printf '\377\330\377\340'; head -c $((n - 4)) /dev/urandom; } > "$f.front"
	{ printf '\377\330\377\340'; head -c $((n - 4)) /dev/urandom; } > "$f.back"
	{
		printf '{"document":{"document_type":"national_id","image_front":"data:image/jpeg;base64,'
		base64 -w0 < "$f.front"
		printf '","image_back":"data:image/jpeg;base64,'
		base64 -w0 < "$f.back"
		printf '","metadata":{"number":"30111222"}}}'
	} > "$f"
}
# keep_answer FILE...: every answer is kept (answers.all) for the scan
# of tests/e2e/secrets.sh, not only the last one left in $T/resp.
keep_answer() { cat "$@" >> "$T/answers.all" 2>/dev/null; echo >> "$T/answers.all"; }
post_json() { # post_json 'JSON' [curl args]
	printf '%s' "$1" > "$T/body.json"; shift
	post "$T/body.json" "$@"
}
resp_header() { # resp_header NAME
	tr -d '\r' < "$T/resp.h" | grep -i "^$1:" | head -n1 | sed 's/^[^:]*: *//'
}
json_field() { # json_field FILE KEY: first "KEY":value (string or number)
	grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.a-z]*\)" "$1" | head -n1 | sed "s/^\"$2\"://; s/^\"//; s/\"$//"
}

# raw_http FILE [TIMEOUT_S]: send FILE's bytes, exactly as they are, on
# a new connection to the gateway (for framing no client would produce)
# and read one answer.  Sets RAW_STATUS ("000": the connection closed,
# or nothing came within TIMEOUT_S, default 5); the head is left in
# $T/raw.h, the body in $T/raw.body.  Interim 100 answers are skipped.
raw_http() {
	local line cl t=${2:-5}
	RAW_STATUS=000
	: > "$T/raw.h"; : > "$T/raw.body"
	exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT" || return 1
	cat "$1" >&3 2>/dev/null &
	while :; do
		IFS= read -r -t "$t" line <&3 || break
		RAW_STATUS=$(printf '%s' "$line" | cut -d' ' -f2)
		cl=0
		printf '%s\n' "${line%$'\r'}" > "$T/raw.h"
		while IFS= read -r -t "$t" line <&3; do
			line=${line%$'\r'}
			[ -z "$line" ] && break
			printf '%s\n' "$line" >> "$T/raw.h"
			case $line in [Cc]ontent-[Ll]ength:*)
				cl=$(printf '%s' "${line#*:}" | tr -dc 0-9) ;;
			esac
		done
		[ "$RAW_STATUS" = 100 ] && continue
		[ "${cl:-0}" -gt 0 ] && timeout "$t" head -c "$cl" <&3 > "$T/raw.body"
		break
	done
	kill $! 2>/dev/null; wait $! 2>/dev/null
	exec 3<&-
	keep_answer "$T/raw.h" "$T/raw.body"
}
raw_code() { json_field "$T/raw.body" code; }

# within_ms MS DESCRIPTION CMD...: run CMD (its status is left in
# RUN_RC, its output in $T/run.out) and check it took under MS
# milliseconds of wall-clock time.  A bound on work that must not grow
# with hostile input: generous against a loaded machine, far below
# what the input would cost unbounded.
within_ms() {
	local ms=$1 desc=$2 t0 t1; shift 2
	t0=$(date +%s%N)
	"$@" > "$T/run.out" 2>&1; RUN_RC=$?
	t1=$(date +%s%N)
	ELAPSED_MS=$(( (t1 - t0) / 1000000 ))
	CHECKS=$((CHECKS + 1))
	if [ "$ELAPSED_MS" -lt "$ms" ]; then ok "$desc (${ELAPSED_MS} ms)"
	else fail "$desc: took ${ELAPSED_MS} ms, bound ${ms} ms"; fi
}
