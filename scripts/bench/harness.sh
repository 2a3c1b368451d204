# scripts/bench/harness.sh: the harness of scripts/bench.sh (sourced by
# it, after the options are read and the binaries built; not run on its
# own).  The private folder and its cleanup, the audit disk probe, free
# ports, the secrets and the certificate, the wrk script, and the
# measuring of one run (measure: wrk, CPU ticks, peak RSS; one line per
# run in $RESULTS).
# ---- the private folder and the processes in it --------------------
D=$(mktemp -d "${TMPDIR:-/tmp}/cmgate-bench.XXXXXX")
# nginx workers run as nobody when started as root: they must be able
# to enter the folder (secrets inside stay 0600).
chmod 0755 "$D"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ]; then echo "bench: kept $D"; else
		rm -rf "$D" ${AD_TMP:+"$AD_TMP"}
	fi
}
trap cleanup EXIT
trap 'exit 99' INT TERM
if [ -n "$AUDIT_DIR" ]; then
	mkdir -p "$AUDIT_DIR"
	AD=$(mktemp -d "$AUDIT_DIR/cmgate-bench-audit.XXXXXX")
	AD_TMP=$AD
else
	AD=$D/audit
fi
mkdir -p "$AD"

# The audit disk: how long one small appending write made durable
# takes (512-byte O_DSYNC writes, as write + fdatasync), since every
# request waits for two of them.  Measured before and after the runs.
fsync_probe() {
	local n=200 s c
	local TIMEFORMAT='%U %S'
	# dd's own elapsed time, and the CPU it used (user + system: on a
	# VM most of a flush is the kernel's and the hypervisor's work).
	{ time dd if=/dev/zero of="$AD/probe" bs=512 count=$n oflag=dsync \
	    2>"$AD/probe.err"; } 2>"$AD/probe.cpu"
	s=$(sed -n 's/.* copied, \([0-9.e-]*\) s.*/\1/p' "$AD/probe.err")
	c=$(awk '{ print $1 + $2 }' "$AD/probe.cpu")
	rm -f "$AD/probe" "$AD/probe.err" "$AD/probe.cpu"
	awk -v s="${s:-0}" -v c="${c:-0}" -v n=$n \
	    'BEGIN { printf "%.0f us (%.0f us of CPU)", s / n * 1e6, c / n * 1e6 }'
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FSYNC_BEFORE=$(fsync_probe)
echo "bench: audit folder $AD: a durable 512-byte append takes ${FSYNC_BEFORE}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# wait_for FILE REGEX [TRIES]: poll (0.05 s steps) until FILE matches.
wait_for() {
	local i=0 tries=${3:-200}
	while [ $i -lt "$tries" ]; do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# A TCP port nobody listens on (nginx needs fixed ports).
TAKEN=" "
free_port() {
	local p hex used
	used=$(sed -n '2,$s/^ *[0-9]*: [0-9A-F]*:\([0-9A-F]*\) .*/\1/p' \
	    /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u)
	while :; do
		p=$((20000 + RANDOM % 30000))
		hex=$(printf '%04X' "$p")
		case $TAKEN in *" $p "*) continue ;; esac
		grep -qx "$hex" <<<"$used" && continue
		TAKEN="$TAKEN$p "
		echo "$p"
		return
	done
}

# Secrets and the certificate.  The upstream's certificate names
# 127.0.0.1 and localhost, and cmgate and the peer both verify it.
API_KEY=bench-api-key-$(openssl rand -hex 16)
TOKEN=bench-token-$(openssl rand -hex 16)
printf '%s\n' "$API_KEY" > "$D/api-key"
chmod 600 "$D/api-key"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$D/key.pem" -out "$D/cert.pem" >/dev/null 2>&1
chmod 644 "$D/cert.pem" "$D/key.pem"
"$B/src/cmgate-audit" keygen "$D/audit.key" >/dev/null
SEED=$top/tests/data/seed.json
TOKEN_SHA=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
# What the upstream answers: the mock's echo of the seed.
RESP='{"id":"nyaxDgxsp7vTxJVZFdHZV3RQAVNHlkK3","type":"individual","status":"pending","first_name":"Maria","second_name":"Julia","last_name":"Barber","email":"mjuliabarber@example.com","birth_date":"1984-11-21","address":{"street_line1":"Florida 9860","city":"Del Viso","postal_code":"1669","state":"ARG-B","country":"ARG"},"phone_country_code":54,"phone_number":"1168860622"}'

# The wrk script: POST the seed as the caller; at the end, one line of
# figures (latencies in microseconds).
{
	echo 'wrk.method = "POST"'
	printf 'wrk.body = [==[%s]==]\n' "$(cat "$SEED")"
	echo 'wrk.headers["Content-Type"] = "application/json"'
	# BENCH_SELFTEST_BAD_TOKEN=1 (tests/e2e/bench-smoke.sh) sends a
	# wrong token, so every cmgate answer is a 401 that must be caught.
	printf 'wrk.headers["Authorization"] = "Bearer %s%s"\n' "$TOKEN" \
	    "$( [ -n "${BENCH_SELFTEST_BAD_TOKEN:-}" ] && echo x)"
	cat <<'LUA'
function done(s, lat, req)
  local e = s.errors
  io.write(string.format("WRK requests=%d duration_us=%d p50=%d p99=%d " ..
    "p999=%d max=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    s.requests, s.duration, lat:percentile(50), lat:percentile(99),
    lat:percentile(99.9), lat.max, e.status, e.connect, e.read, e.write,
    e.timeout))
end
LUA
} > "$D/post.lua"

# ---- measuring -----------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # cpu_ticks PID...: user+system ticks, all threads
	local p t=0 s
	for p in "$@"; do
		s=$(cut -d')' -f2 "/proc/$p/stat")
		set -- $s
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}
# The PIDs to measure for a system: nginx's master and worker, or
# cmgate (one process, every thread).
sys_pids() {
	local v
	eval "v=\$PID_$1"
	echo "$v $(pgrep -P "$v" | tr '\n' ' ')"
}
reset_peak() { # the peak RSS starts again from the current RSS
	local p
	for p in "$@"; do echo 5 > "/proc/$p/clear_refs" 2>/dev/null || true; done
}
peak_kb() { # sum of VmHWM over PIDs
	local p t=0 v
	for p in "$@"; do
		v=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status")
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
rss_kb() {
	local p t=0 v
	for p in "$@"; do
		v=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status")
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
wrk_field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1"; }

RESULTS=$D/results.tsv
: > "$RESULTS"
BAD_RUNS=0

# measure LABEL SYS SCHEME CONNS URL [WRK ARGS...]: one wrk run; one
# line to $RESULTS:
#   label scheme conns rps p50 p99 p999 cpu_s_per_10k peak_kb bad
measure() {
	local label=$1 sys=$2 scheme=$3 c=$4 url=$5 pids out t0 t1 req dur
	local bad line threads=1
	shift 5
	pids=$(sys_pids "$sys")
	if [ "$WARMUP" = 1 ]; then
		wrk -t1 -c"$c" -d1s -s "$D/post.lua" "$@" \
		    "$url/management/clients/individuals" >/dev/null 2>&1 || true
	fi
	# shellcheck disable=SC2086
	reset_peak $pids
	# shellcheck disable=SC2086
	t0=$(cpu_ticks $pids)
	out=$(wrk -t$threads -c"$c" -d"${DURATION}s" -s "$D/post.lua" "$@" \
	    "$url/management/clients/individuals" 2>&1) || true
	# shellcheck disable=SC2086
	t1=$(cpu_ticks $pids)
	line=$(grep '^WRK ' <<<"$out" || true)
	if [ -z "$line" ]; then
		echo "bench: wrk failed for $label $scheme c=$c:" >&2
		echo "$out" >&2
		line="WRK requests=0 duration_us=1 p50=0 p99=0 p999=0 max=0 non2xx=1 connect=0 read=0 write=0 timeout=0"
	fi
	req=$(wrk_field "$line" requests)
	dur=$(wrk_field "$line" duration_us)
	bad=$(( $(wrk_field "$line" non2xx) + $(wrk_field "$line" connect) +
	    $(wrk_field "$line" read) + $(wrk_field "$line" write) +
	    $(wrk_field "$line" timeout) ))
	[ "$req" -gt 0 ] || bad=$((bad + 1))
	[ "$bad" -eq 0 ] || BAD_RUNS=$((BAD_RUNS + 1))
	# shellcheck disable=SC2086
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$scheme" \
	    "$c" \
	    "$(awk -v r="$req" -v d="$dur" 'BEGIN{printf "%.0f", r/(d/1e6)}')" \
	    "$(wrk_field "$line" p50)" "$(wrk_field "$line" p99)" \
	    "$(wrk_field "$line" p999)" \
	    "$(awk -v t=$((t1 - t0)) -v k="$CLK_TCK" -v r="$req" \
	      'BEGIN{printf "%.3f", r ? t/k/r*10000 : 0}')" \
	    "$(peak_kb $pids)" "$bad" >> "$RESULTS"
	printf '  %-22s %-5s c=%-4s %8s req/s  p99 %6.2f ms  %s\n' "$label" \
	    "$scheme" "$c" "$(tail -n1 "$RESULTS" | cut -f4)" \
	    "$(awk -v v="$(wrk_field "$line" p99)" 'BEGIN{print v/1000}')" \
	    "$([ "$bad" -eq 0 ] && echo ok || echo "NOT OK: $bad non-2xx/errors")"
}
