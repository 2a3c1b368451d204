#!/usr/bin/env bash
# scripts/bench.sh: cmgate measured side by side with nginx as a plain
# reverse proxy (issue 8).  One command: builds cmgate with
# optimizations, starts a fixed-answer upstream (nginx, HTTP and HTTPS
# with a self-signed certificate made on the fly), the peer (nginx as
# a reverse proxy: 1 worker, upstream keep-alive, x-api-key injected)
# and cmgate, drives each with wrk posting the seed body, and prints
# one table.  The peer and cmgate run alternately in the same run, so
# each ratio is measured side by side.
#
#   scripts/bench.sh             full run; writes docs/benchmarks.md
#                                and docs/benchmarks-latency.png
#   scripts/bench.sh --smoke     a few seconds, writes nothing under
#                                docs/ (make check runs this)
#
# Options:
#   --duration S    seconds per measured run (default 5; smoke 1)
#   --rounds N      alternating rounds per cell; the median is kept
#                   (default 3; smoke 1)
#   --conns "LIST"  caller connections (default "1 32 256")
#   --workers N     the multi-loop cmgate row uses N workers (default:
#                   the number of CPUs, at least 2)
#   --only LIST     sections to run, comma-separated, of
#                   proxy,budget,slow,idle,micro,profile (default all)
#   --out FILE      the Markdown report (default docs/benchmarks.md;
#                   "-" for none)
#   --build-dir D   where to build (default build-bench-opt); with
#                   --no-build, where the binaries already are
#   --no-build      use the binaries in --build-dir (or $top_builddir)
#   --audit-dir D   where cmgate's audit logs go (default: the
#                   temporary folder, on the disk under $TMPDIR or
#                   /tmp).  A tmpfs here is a diagnostic: the log is
#                   then not durable, and the report says so.
#   --keep          keep the temporary folder
#
# Every measured run must answer 2xx only, with no socket errors, on
# both sides; otherwise the run is flagged and the exit status is 1.
#
# The upstream budget and the durable audit log are on in every cmgate
# configuration: the throughput rows set upstream.rate_limit_per_sec to
# 0 ("budget off"), and one row keeps the default budget (14/s) to show
# that it caps forwarding.  Needs: nginx, wrk, openssl, curl; gnuplot
# (the plot) and valgrind (instructions per request) are optional;
# scripts/install-deps.sh installs all of these.  perf and strace (the
# "where the time goes" section) are used when present.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0
DURATION=
ROUNDS=
CONNS=
NWORKERS=
ONLY=proxy,budget,slow,idle,micro,profile
OUT=$top/docs/benchmarks.md
BUILD_DIR=
NO_BUILD=0
KEEP=0
AUDIT_DIR=

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) SMOKE=1 ;;
	--duration) DURATION=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	--workers) NWORKERS=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--out) OUT=$2; shift ;;
	--build-dir) BUILD_DIR=$2; shift ;;
	--no-build) NO_BUILD=1 ;;
	--keep) KEEP=1 ;;
	--audit-dir) AUDIT_DIR=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ "$SMOKE" = 1 ]; then
	: "${DURATION:=1}" "${ROUNDS:=1}" "${CONNS:=8}"
	[ "$OUT" = "$top/docs/benchmarks.md" ] && OUT=-
	# The smoke run checks that every part still works, on a small
	# scale: it proves nothing about speed.
	IDLE_CONNS=200 SLOW_CONNS=50 SLOW_SECS=1 MICRO_SECS=0.2
	CALLGRIND_N=0 WARMUP=0
else
	: "${DURATION:=5}" "${ROUNDS:=3}" "${CONNS:=1 32 256}"
	IDLE_CONNS=10000 SLOW_CONNS=1000 SLOW_SECS=10 MICRO_SECS=3
	CALLGRIND_N=2000 WARMUP=1
fi
NCPU=$(nproc)
: "${NWORKERS:=$(( NCPU > 2 ? NCPU : 2 ))}"
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

for tool in nginx wrk openssl curl; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
		echo "bench: $tool is missing: run scripts/install-deps.sh" >&2
		exit 77
	}
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---- build ---------------------------------------------------------
if [ "$NO_BUILD" = 1 ]; then
	B=${BUILD_DIR:-${top_builddir:-$top}}
else
	B=${BUILD_DIR:-$top/build-bench-opt}
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi >/dev/null 2>&1)
	mkdir -p "$B"
	if [ ! -f "$B/Makefile" ]; then
		echo "bench: configuring an optimized build in $B"
		(cd "$B" && "$top/configure" --quiet CFLAGS="-O2 -g")
	fi
	echo "bench: building in $B"
	make -s -C "$B" -j"$NCPU" >/dev/null
fi
B=$(cd "$B" && pwd)
CMGATE=$B/src/cmgate
for f in "$CMGATE" "$B/src/cmgate-audit" "$B/tests/mock-upstream" \
    "$B/tests/bench/bench-micro" "$B/tests/bench/bench-idle"; do
	[ -x "$f" ] || { echo "bench: $f is not built" >&2; exit 99; }
done

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

nginx_common() { # nginx_common NAME: the top of an nginx config
	local n=$1
	cat <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
pid $D/$n/nginx.pid;
error_log $D/$n/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user nobody nogroup;" )
events { worker_connections 30000; }
http {
    client_body_temp_path $D/$n/body;
    proxy_temp_path $D/$n/proxy;
    fastcgi_temp_path $D/$n/fastcgi;
    uwsgi_temp_path $D/$n/uwsgi;
    scgi_temp_path $D/$n/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
EOF
}

start_nginx() { # start_nginx NAME: config in $D/NAME/nginx.conf
	local n=$1 i
	"$NGINX" -e "$D/$n/error.log" -p "$D/$n/" -c "$D/$n/nginx.conf" \
	    -g 'daemon off;' 2>>"$D/$n/error.log" &
	PIDS+=($!)
	eval "PID_$n=$!"
	for i in $(seq 100); do
		[ -s "$D/$n/nginx.pid" ] && pgrep -P "$!" >/dev/null && return 0
		kill -0 "$!" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: nginx ($n) did not start:" >&2
	cat "$D/$n/error.log" >&2
	exit 99
}

# The fixed-answer upstream: one nginx worker, HTTP and HTTPS.
UP_HTTP=$(free_port) UP_HTTPS=$(free_port)
mkdir -p "$D/up"
{
	nginx_common up
	cat <<EOF
    access_log off;
    server {
        listen 127.0.0.1:$UP_HTTP;
        listen 127.0.0.1:$UP_HTTPS ssl;
        ssl_certificate $D/cert.pem;
        ssl_certificate_key $D/key.pem;
        ssl_session_cache shared:up:10m;
        location / {
            default_type application/json;
            return 200 '$RESP';
        }
    }
}
EOF
} > "$D/up/nginx.conf"
start_nginx up

# The peer: nginx as a plain reverse proxy, configured fairly: one
# worker, upstream keep-alive above the connection count, x-api-key
# injected, TLS verified against the same certificate and name.  It
# logs each request (its default), as cmgate does.
PEER_HTTP=$(free_port) PEER_HTTPS=$(free_port)
mkdir -p "$D/peer"
{
	nginx_common peer
	cat <<EOF
    access_log $D/peer/access.log;
    upstream up_http { server 127.0.0.1:$UP_HTTP; keepalive 1024;
        keepalive_requests 100000000; }
    upstream up_https { server 127.0.0.1:$UP_HTTPS; keepalive 1024;
        keepalive_requests 100000000; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header x-api-key "$API_KEY";
    server {
        listen 127.0.0.1:$PEER_HTTP;
        location / { proxy_pass http://up_http; }
    }
    server {
        listen 127.0.0.1:$PEER_HTTPS;
        location / {
            proxy_pass https://up_https;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $D/cert.pem;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;
        }
    }
}
EOF
} > "$D/peer/nginx.conf"
start_nginx peer

# start_cmgate NAME WORKERS UPSTREAM_URL RATE [EXTRA_UPSTREAM_JSON]:
# a cmgate with its own folder, audit log and config.  RATE "" keeps
# the default budget.  Sets URL_NAME and PID_NAME.
start_cmgate() {
	local n=$1 w=$2 url=$3 rate=$4 extra=${5:-} ca=null port i
	mkdir -p "$D/$n" "$AD/$n"
	case $url in https:*) ca="\"$D/cert.pem\"" ;; esac
	cat > "$D/$n/cmgate.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "workers": $w,
  "upstream": {
    "base_url": "$url",
    "api_key_file": "$D/api-key",
    "ca_file": $ca
    $( [ -n "$rate" ] && echo ", \"rate_limit_per_sec\": $rate" )
    $extra
  },
  "audit": { "path": "$AD/$n/audit.log", "key_file": "$D/audit.key" },
  "callers": [ { "name": "bench", "token_sha256": "$TOKEN_SHA" } ],
  "idempotency": { "path": "idem.db" }
}
EOF
	chmod 644 "$D/$n/cmgate.json"	# cmgate refuses a group-writable config
	"$CMGATE" -c "$D/$n/cmgate.json" 2>"$D/$n/gw.log" &
	PIDS+=($!)
	eval "PID_$n=$!"
	if ! wait_for "$D/$n/gw.log" "listening on" 400; then
		echo "bench: cmgate ($n) did not start:" >&2
		cat "$D/$n/gw.log" >&2
		exit 99
	fi
	port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' \
	    "$D/$n/gw.log" | tail -n1)
	eval "URL_$n=http://127.0.0.1:$port"
}

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

# ---- 1. throughput and latency, side by side ---------------------
LOOP1="cmgate, 1 loop"
LOOPN="cmgate, $NWORKERS workers"
if want proxy; then
	start_cmgate c1h 1 "http://127.0.0.1:$UP_HTTP" 0
	start_cmgate c1s 1 "https://127.0.0.1:$UP_HTTPS" 0
	start_cmgate cnh "$NWORKERS" "http://127.0.0.1:$UP_HTTP" 0
	start_cmgate cns "$NWORKERS" "https://127.0.0.1:$UP_HTTPS" 0
	echo "bench: $ROUNDS round(s) of ${DURATION}s runs, connections: $CONNS"
	for r in $(seq "$ROUNDS"); do
		echo "bench: round $r"
		for scheme in http https; do
			for c in $CONNS; do
				if [ $scheme = http ]; then
					pu=http://127.0.0.1:$PEER_HTTP
					a=c1h b=cnh
				else
					pu=http://127.0.0.1:$PEER_HTTPS
					a=c1s b=cns
				fi
				measure nginx peer $scheme "$c" "$pu"
				measure "$LOOP1" $a $scheme "$c" "$(eval echo \$URL_$a)"
				measure "$LOOPN" $b $scheme "$c" "$(eval echo \$URL_$b)"
			done
		done
	done
fi

# ---- 2. the default budget: forwarding capped at 14/s --------------
if want budget; then
	start_cmgate cbh 1 "http://127.0.0.1:$UP_HTTP" ""
	echo "bench: the default upstream budget (14/s), 32 connections"
	d=$DURATION
	[ "$SMOKE" = 1 ] || DURATION=10
	WARMUP_SAVE=$WARMUP WARMUP=0
	measure "cmgate, budget on (14/s)" cbh http 32 "$URL_cbh" --timeout 30s
	WARMUP=$WARMUP_SAVE DURATION=$d
fi

# ---- 3. a slow upstream: 200 ms per answer, many callers ----------
SLOW_LINE=
if want slow; then
	"$B/tests/mock-upstream" -l 127.0.0.1:0 -k "$API_KEY" -d 200 -t 120 \
	    > "$D/mock.out" 2>"$D/mock.err" &
	PIDS+=($!)
	PID_mock=$!
	wait_for "$D/mock.out" "listening on" || { cat "$D/mock.err"; exit 99; }
	mport=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$D/mock.out")
	start_cmgate slow 1 "http://127.0.0.1:$mport" 0 \
	    ", \"max_connections\": $((SLOW_CONNS + 64))"
	echo "bench: slow upstream (200 ms), $SLOW_CONNS callers, ${SLOW_SECS}s"
	# Connect everyone once, then measure from a settled RSS.
	[ "$SMOKE" = 1 ] || wrk -t1 -c"$SLOW_CONNS" -d1s --timeout 10s -s "$D/post.lua" \
	    "$URL_slow/management/clients/individuals" >/dev/null 2>&1 || true
	sleep 0.5
	base_kb=$(rss_kb "$PID_slow")
	d=$DURATION DURATION=$SLOW_SECS
	WARMUP_SAVE=$WARMUP WARMUP=0
	measure "cmgate, slow upstream" slow http "$SLOW_CONNS" "$URL_slow" \
	    --timeout 10s
	WARMUP=$WARMUP_SAVE DURATION=$d
	SLOW_LINE=$(tail -n1 "$RESULTS")
	SLOW_BASE_KB=$base_kb
fi

# ---- 4. idle keep-alive connections --------------------------------
IDLE_CM= IDLE_NG=
if want idle; then
	start_cmgate idle 1 "http://127.0.0.1:$UP_HTTP" 0
	echo "bench: $IDLE_CONNS idle keep-alive connections"
	idle_hold() { # idle_hold NAME URL PIDS...: prints "base_kb held_kb"
		local name=$1 url=$2 port pid b h o=$D/idle-$1.out
		shift 2
		port=${url##*:}
		b=$(rss_kb "$@")
		"$B/tests/bench/bench-idle" 127.0.0.1 "$port" "$IDLE_CONNS" \
		    > "$o" 2>&1 &
		pid=$!
		if ! wait_for "$o" "^holding|stalled" 1200; then
			echo "bench: bench-idle ($name) did not finish" >&2
		fi
		sleep 0.3
		h=$(rss_kb "$@")
		sed "s/^/  $name: /" "$o" >&2
		grep -q "($IDLE_CONNS answered 200, 0 failed)" "$o" ||
		    echo "$name" >> "$D/idle.bad"
		kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
		echo "$b $h"
	}
	IDLE_CM=$(idle_hold cmgate "$URL_idle" "$PID_idle")
	sleep 1
	# shellcheck disable=SC2046
	IDLE_NG=$(idle_hold nginx "http://127.0.0.1:$PEER_HTTP" $(sys_pids peer))
	# (idle_hold runs in a subshell: its failures come back in a file)
	if [ -s "$D/idle.bad" ]; then
		BAD_RUNS=$((BAD_RUNS + $(wc -l < "$D/idle.bad")))
	fi
fi

# ---- 5. the per-request CPU path, without the network --------------
MICRO= MICRO_SPLIT= MICRO_IR=
if want micro; then
	echo "bench: microbenchmark (parse, validate, normalize, serialize, audit)"
	MICRO=$("$B/tests/bench/bench-micro" -b "$SEED" -s "$MICRO_SECS" -r)
	echo "$MICRO" | sed 's/^/  /'
	if [ "$CALLGRIND_N" -gt 0 ] && command -v valgrind >/dev/null 2>&1; then
		valgrind --tool=callgrind --toggle-collect=micro_measure \
		    --callgrind-out-file="$D/callgrind.out" \
		    "$B/tests/bench/bench-micro" -b "$SEED" -n "$CALLGRIND_N" \
		    >/dev/null 2>"$D/callgrind.err" || true
		ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$D/callgrind.out" \
		    2>/dev/null | head -n1)
		if [ -n "$ir" ]; then
			MICRO_IR=$((ir / CALLGRIND_N))
			echo "  callgrind: $MICRO_IR instructions per request"
			# Inclusive instructions per request of the main steps.
			MICRO_SPLIT=$(callgrind_annotate --inclusive=yes \
			    "$D/callgrind.out" 2>/dev/null | awk -v n="$CALLGRIND_N" '
			    match($0, /:(caller_auth|request_id|validate_individual|json_parse_strict|json_object_to_json_string_length|afmt_build|afmt_line_mac|afmt_sha256|afmt_hmac|sha256|now_iso8601)(\.[a-z]+\.[0-9]+)? \[/) {
				f = substr($0, RSTART + 1, RLENGTH - 3); sub(/\..*/, "", f)
				if (seen[f]++) next
				ir = $1; gsub(/,/, "", ir)
				printf "  %-34s %8.0f instructions per request\n", f, ir / n }' || true)
		fi
	fi
fi

# ---- 6. where cmgate's time goes (1 loop, http, 32 connections) ----
# CPU per thread (the loop against the rest: audit writer, idempotency
# store), a perf profile by library and symbol, and system calls per
# request (strace -c).  Each tool is optional.
PROFILE= PROFILE_SYMS= THREADS= SYSCALLS=
if want profile && [ "$SMOKE" = 0 ] && [ -n "${URL_c1h:-}" ]; then
	echo "bench: where the time goes (cmgate, 1 loop, http, 32 connections)"
	tticks() { # tid ticks, one line per thread
		local t
		for t in /proc/$PID_c1h/task/*; do
			echo "${t##*/} $(cut -d')' -f2 "$t/stat" | awk '{ print $12 + $13 }')"
		done
	}
	tticks > "$D/t0"
	out=$(wrk -t1 -c32 -d"${DURATION}s" -s "$D/post.lua" \
	    "$URL_c1h/management/clients/individuals" 2>&1 || true)
	tticks > "$D/t1"
	req=$(wrk_field "$(grep '^WRK ' <<<"$out")" requests)
	THREADS=$(join "$D/t0" "$D/t1" | awk -v pid="$PID_c1h" -v r="${req:-0}" \
	    -v k="$CLK_TCK" '{ d = ($3 - $2) / k * 1e6 / (r ? r : 1)
	        if ($1 == pid) loop += d; else rest += d }
	    END { printf "CPU per request: event loop thread %.1f us, other threads (audit writer, ...) %.1f us (%d requests)", loop, rest, r }')
	echo "  $THREADS"
	if command -v perf >/dev/null 2>&1; then
		perf record -F 999 -g -o "$D/perf.data" -p "$PID_c1h" \
		    >/dev/null 2>&1 &
		ppid=$!
		sleep 0.3
		wrk -t1 -c32 -d"${DURATION}s" -s "$D/post.lua" \
		    "$URL_c1h/management/clients/individuals" >/dev/null 2>&1 || true
		kill -INT "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null || true
		PROFILE=$(perf report -i "$D/perf.data" --no-children --sort dso \
		    --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -n 12 || true)
		PROFILE_SYMS=$(perf report -i "$D/perf.data" --no-children \
		    --sort dso,sym --stdio -g none 2>/dev/null |
		    grep -E '^ +[0-9.]+%' | head -n 30 || true)
	fi
	if command -v strace >/dev/null 2>&1; then
		timeout 6 strace -c -f -p "$PID_c1h" -o "$D/strace.txt" \
		    >/dev/null 2>&1 &
		spid=$!
		sleep 0.5
		out=$(wrk -t1 -c32 -d3s -s "$D/post.lua" \
		    "$URL_c1h/management/clients/individuals" 2>&1 || true)
		wait "$spid" 2>/dev/null || true
		req=$(wrk_field "$(grep '^WRK ' <<<"$out")" requests)
		SYSCALLS=$(awk -v r="${req:-0}" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
		        c = $4; name = $NF; if (r > 0 && c + 0 > 0)
		        printf "%s %.2f\n", name, c / r; t += c }
		    END { if (r > 0) printf "total %.1f\n", t / r }' \
		    "$D/strace.txt" 2>/dev/null | sort -k2,2nr | head -n 16 |
		    awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
		[ -n "$SYSCALLS" ] && echo "  system calls per request: $SYSCALLS"
	fi
fi

# ---- the audit writer's own figures (GET /metrics) ----------------
FSYNC_AFTER=$(fsync_probe)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
AUDIT_STATS=
audit_stats() { # audit_stats NAME: one line from cmgate's /metrics
	local u m rec bat fs
	eval "u=\${URL_$1:-}"
	[ -n "$u" ] || return 0
	m=$(curl -s --max-time 5 "$u/metrics" || true)
	rec=$(sed -n 's/^cmgate_audit_records_total \([0-9.e+]*\)$/\1/p' <<<"$m")
	bat=$(sed -n 's/^cmgate_audit_batches_total \([0-9.e+]*\)$/\1/p' <<<"$m")
	fs=$(sed -n 's/^cmgate_audit_fsync_duration_seconds_sum \([0-9.e+-]*\)$/\1/p' <<<"$m")
	[ -n "$rec" ] && [ -n "$bat" ] && [ -n "$fs" ] || return 0
	awk -v r="$rec" -v b="$bat" -v f="$fs" -v n="$2" 'BEGIN { if (b > 0)
	    printf "%s: %d records in %d write+fdatasync rounds (%.1f records per round), mean fdatasync %.2f ms", n, r, b, r / b, f / b * 1000 }'
}
for n in c1h c1s cnh cns; do
	case $n in
	c1h) l="$LOOP1, http" ;; c1s) l="$LOOP1, https" ;;
	cnh) l="$LOOPN, http" ;; cns) l="$LOOPN, https" ;;
	esac
	line=$(audit_stats $n "$l")
	[ -n "$line" ] && AUDIT_STATS="$AUDIT_STATS- $line
"
done

# ---- the table -----------------------------------------------------
# median ROWS: of the rounds of one cell, the run with the median
# requests/s (all its figures are kept together).
median_row() { # median_row LABEL SCHEME CONNS
	awk -F'\t' -v l="$1" -v s="$2" -v c="$3" \
	    '$1 == l && $2 == s && $3 == c' "$RESULTS" | sort -t$'\t' -k4,4n |
	    awk '{ r[NR] = $0 } END { if (NR) print r[int((NR + 1) / 2)] }'
}
ratio_range() { # ratio_range LABEL SCHEME CONNS: min-max of per-round ratios
	paste <(awk -F'\t' -v s="$2" -v c="$3" \
	    '$1 == "nginx" && $2 == s && $3 == c {print $4}' "$RESULTS") \
	    <(awk -F'\t' -v l="$1" -v s="$2" -v c="$3" \
	    '$1 == l && $2 == s && $3 == c {print $4}' "$RESULTS") |
	    awk '$1 > 0 { x = $2 / $1; if (n == 0 || x < lo) lo = x;
	        if (n == 0 || x > hi) hi = x; n++ }
	        END { if (n > 1) printf "%.2f-%.2f", lo, hi; else if (n) printf "%.2f", lo }'
}
fmt_ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }

TABLE=$D/table.md
{
	echo "| system | upstream | conns | req/s | ratio to nginx (rounds) | p50 ms | p99 ms | p99.9 ms | CPU s / 10k req | peak RSS MiB | non-2xx + errors |"
	echo "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"
	if want proxy; then
		for scheme in http https; do
			for c in $CONNS; do
				nrow=$(median_row nginx $scheme "$c")
				nrps=$(cut -f4 <<<"$nrow")
				for l in nginx "$LOOP1" "$LOOPN"; do
					row=$(median_row "$l" $scheme "$c")
					[ -n "$row" ] || continue
					IFS=$'\t' read -r _ _ _ rps p50 p99 p999 cpu kb bad <<<"$row"
					if [ "$l" = nginx ]; then ratio="1"
					else
						ratio="$(awk -v a="$rps" -v b="$nrps" 'BEGIN{printf "%.2f", b ? a/b : 0}') ($(ratio_range "$l" $scheme "$c"))"
					fi
					nbad=$(awk -F'\t' -v l="$l" -v s=$scheme -v c="$c" '$1==l && $2==s && $3==c {t+=$10} END {print t+0}' "$RESULTS")
					echo "| $l$( [ "$l" != nginx ] && echo ", budget off") | $scheme | $c | $rps | $ratio | $(fmt_ms "$p50") | $(fmt_ms "$p99") | $(fmt_ms "$p999") | $cpu | $(awk -v k="$kb" 'BEGIN{printf "%.1f", k/1024}') | $nbad |"
				done
			done
		done
	fi
	for l in "cmgate, budget on (14/s)" "cmgate, slow upstream"; do
		row=$(awk -F'\t' -v l="$l" '$1 == l' "$RESULTS" | tail -n1)
		[ -n "$row" ] || continue
		IFS=$'\t' read -r _ scheme c rps p50 p99 p999 cpu kb bad <<<"$row"
		echo "| $l | $scheme | $c | $rps | - | $(fmt_ms "$p50") | $(fmt_ms "$p99") | $(fmt_ms "$p999") | $cpu | $(awk -v k="$kb" 'BEGIN{printf "%.1f", k/1024}') | $bad |"
	done
} > "$TABLE"

# ---- targets -------------------------------------------------------
CHECKS=$D/checks.md
: > "$CHECKS"
target() { # target TEXT OK(0/1) DETAIL
	printf -- '- %s %s: %s\n' "$([ "$2" = 1 ] && echo '[met]' || echo '[NOT met]')" "$1" "$3" >> "$CHECKS"
}
cell() { median_row "$1" "$2" "$3" | cut -f"$4"; }
if want proxy && [[ " $CONNS " == *" 32 "* ]]; then
	for scheme in http https; do
		n=$(cell nginx $scheme 32 4)
		for spec in "$LOOP1:0.50" "$LOOPN:0.65"; do
			l=${spec%:*} goal=${spec##*:}
			v=$(cell "$l" $scheme 32 4)
			ratio=$(awk -v a="$v" -v b="$n" 'BEGIN{printf "%.2f", b ? a/b : 0}')
			target "$l, $scheme upstream, 32 connections: >= ${goal}x nginx" \
			    "$(awk -v r="$ratio" -v g="$goal" 'BEGIN{print (r >= g) ? 1 : 0}')" \
			    "${ratio}x ($v vs $n req/s; rounds $(ratio_range "$l" $scheme 32))"
		done
	done
	for scheme in http https; do
		for c in $CONNS; do
			np=$(cell nginx $scheme "$c" 6)
			for l in "$LOOP1" "$LOOPN"; do
				p=$(cell "$l" $scheme "$c" 6)
				target "$l, $scheme, c=$c: p99 <= nginx p99 + 1 ms" \
				    "$(awk -v a="$p" -v b="$np" 'BEGIN{print (a <= b + 1000) ? 1 : 0}')" \
				    "$(fmt_ms "$p") ms vs $(fmt_ms "$np") ms"
			done
		done
	done
fi
if [ -n "$SLOW_LINE" ]; then
	IFS=$'\t' read -r _ _ c rps p50 p99 p999 cpu kb bad <<<"$SLOW_LINE"
	ideal=$((c * 1000 / 200))
	target "slow upstream (200 ms), $c callers: >= 90% of the ideal $ideal req/s" \
	    "$(awk -v r="$rps" -v i="$ideal" 'BEGIN{print (r >= 0.9 * i) ? 1 : 0}')" \
	    "$rps req/s ($(awk -v r="$rps" -v i="$ideal" 'BEGIN{printf "%.1f", 100*r/i}')%), RSS $(awk -v k="$SLOW_BASE_KB" 'BEGIN{printf "%.1f", k/1024}') MiB settled -> $(awk -v k="$kb" 'BEGIN{printf "%.1f", k/1024}') MiB peak: $(awk -v a="$kb" -v b="$SLOW_BASE_KB" -v c="$c" 'BEGIN{printf "%.1f", (a-b)/c}') KiB per in-flight request ($(awk -v k="$kb" -v c="$c" 'BEGIN{printf "%.1f", k/c}') KiB counting the whole process)"
fi
if [ -n "$IDLE_CM" ]; then
	read -r b h <<<"$IDLE_CM"
	target "$IDLE_CONNS idle keep-alive connections in < 64 MiB RSS" \
	    "$(awk -v h="$h" 'BEGIN{print (h < 65536) ? 1 : 0}')" \
	    "$(awk -v h="$h" -v b="$b" -v n="$IDLE_CONNS" 'BEGIN{printf "%.1f MiB (%.1f MiB before; %.2f KiB per connection)", h/1024, b/1024, (h-b)/n}'); nginx: $(read -r nb nh <<<"$IDLE_NG"; awk -v h="$nh" -v b="$nb" -v n="$IDLE_CONNS" 'BEGIN{printf "%.1f MiB (%.2f KiB per connection)", h/1024, (h-b)/n}')"
fi
target "every run answered 2xx only, no socket errors (both sides)" \
    "$([ "$BAD_RUNS" -eq 0 ] && echo 1 || echo 0)" "$BAD_RUNS run(s) flagged"

echo
cat "$TABLE"
echo
if [ "$SMOKE" = 1 ]; then
	echo "(smoke run: too short to mean anything; the targets below only"
	echo " show that every part of the script still runs)"
fi
cat "$CHECKS"
[ -z "$AUDIT_STATS" ] || printf '\naudit writer:\n%s' "$AUDIT_STATS"
echo "audit disk: a durable 512-byte append took ${FSYNC_BEFORE} before the runs, ${FSYNC_AFTER} after"

# ---- the plot ------------------------------------------------------
PLOT=
if want proxy && [ "$OUT" != - ] && command -v gnuplot >/dev/null 2>&1; then
	mkdir -p "$(dirname "$OUT")"
	PLOT=$(dirname "$OUT")/benchmarks-latency.png
	: > "$D/plot.dat"
	idx=0 plots=
	for l in nginx "$LOOP1" "$LOOPN"; do
		for scheme in http https; do
			for c in $CONNS; do
				row=$(median_row "$l" $scheme "$c")
				[ -n "$row" ] && printf '%s %s %s\n' "$c" \
				    "$(cut -f6 <<<"$row")" "$(cut -f5 <<<"$row")" >> "$D/plot.dat"
			done
			printf '\n\n' >> "$D/plot.dat"
			# One colour per system; HTTPS dashed.
			plots="$plots${plots:+, }'$D/plot.dat' index $idx using 1:(\$2/1000) with linespoints lc $(( idx / 2 + 1 )) dt $( [ $scheme = http ] && echo 1 || echo 2) pt 7 ps 0.7 title '$l, $scheme'"
			idx=$((idx + 1))
		done
	done
	gnuplot <<EOF 2>/dev/null || PLOT=
set terminal pngcairo size 900,540 font 'sans,11' background rgb 'white'
set output '$PLOT'
set title 'p99 latency vs caller connections (each point: the median of $ROUNDS run(s))'
set xlabel 'caller connections'
set ylabel 'p99 latency (ms)'
set logscale x 2
set logscale y 10
set xtics ($(echo "$CONNS" | sed 's/ /, /g'))
set xrange [0.7:$(echo "$CONNS" | awk '{ print $NF * 1.4 }')]
set key outside right top
set grid
plot $plots
EOF
fi

# ---- the report ----------------------------------------------------
if [ "$OUT" != - ]; then
	REPORT=$D/report.md
	{
		echo "<!-- bench:begin (written by scripts/bench.sh; edit outside these markers) -->"
		echo "## Latest run"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$top" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
		echo "- machine: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1), $NCPU CPU(s)$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *\(.*\)/ (\1 guest)/p'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
		echo "- load average (1, 5, 15 min) before the runs: $LOAD_BEFORE; after: $LOAD_AFTER (anything else running shares the $NCPU CPUs)"
		echo "- software: $("$NGINX" -v 2>&1 | sed 's/.*version: //'), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), $("$CMGATE" --version)"
		echo "- command: \`scripts/bench.sh$( [ "$ROUNDS" != 3 ] && echo " --rounds $ROUNDS")$( [ "$DURATION" != 5 ] && echo " --duration $DURATION")\`: $ROUNDS round(s) of ${DURATION} s runs per cell, nginx and cmgate alternating; each cell is the run with the median req/s; wrk -t1, one warm-up second before each run"
		echo "- cmgate: audit log on (fdatasync group commit), validation on, access log to a file; \"budget off\" = upstream.rate_limit_per_sec 0. nginx: 1 worker, upstream keepalive 1024, access log to a file, TLS verified (proxy_ssl_name localhost)"
		echo "- audit log folder: $( [ -n "$AUDIT_DIR" ] && echo "$AUDIT_DIR ($(df -PT "$AD" | awk 'NR == 2 { print $2 }'); if tmpfs, NOT durable: a diagnostic run)" || echo "the bench's temporary folder ($(df -PT "$AD" | awk 'NR == 2 { print $2 }'))"); a durable 512-byte append (dd oflag=dsync) took ${FSYNC_BEFORE} before the runs and ${FSYNC_AFTER} after"
		echo "- CPU = user + system time of the proxy's own processes (all cmgate threads; nginx master + worker) per 10,000 requests; peak RSS = VmHWM during the run"
		echo
		cat "$TABLE"
		echo
		[ -n "$PLOT" ] && echo "![p99 latency vs connections]($(basename "$PLOT"))" && echo
		echo "### Targets"
		echo
		cat "$CHECKS"
		if [ -n "$AUDIT_STATS" ]; then
			echo
			echo "### The audit writer during the runs (cmgate's /metrics)"
			echo
			printf '%s' "$AUDIT_STATS"
		fi
		if [ -n "$MICRO" ]; then
			echo
			echo "### Per-request CPU path (tests/bench/bench-micro, no network)"
			echo
			echo '```'
			echo "$MICRO"
			[ -n "$MICRO_IR" ] && echo "callgrind: $MICRO_IR instructions per request (valgrind --tool=callgrind --toggle-collect=micro_measure, $CALLGRIND_N requests)"
			[ -n "$MICRO_SPLIT" ] && echo "inclusive, per request (valgrind hides the CPU's SHA extensions, so OpenSSL hashes in plain code here: the hashing counts are higher than on the real CPU):" && echo "$MICRO_SPLIT"
			echo '```'
		fi
		if [ -n "$THREADS$SYSCALLS" ]; then
			echo
			echo "### Where cmgate's time goes (1 loop, http upstream, 32 connections)"
			echo
			[ -n "$THREADS" ] && echo "- $THREADS"
			[ -n "$SYSCALLS" ] && echo "- system calls per request (strace -c -f, all threads; under strace): $SYSCALLS"
		fi
		if [ -n "$PROFILE" ]; then
			echo
			echo "perf, by library (all threads):"
			echo
			echo '```'
			echo "$PROFILE"
			echo '```'
			echo
			echo "<details><summary>top symbols</summary>"
			echo
			echo '```'
			echo "$PROFILE_SYMS"
			echo '```'
			echo "</details>"
		fi
		echo "<!-- bench:end -->"
	} > "$REPORT"
	mkdir -p "$(dirname "$OUT")"
	if [ -f "$OUT" ] && grep -q '<!-- bench:begin' "$OUT" &&
	    grep -q '<!-- bench:end -->' "$OUT"; then
		awk -v rep="$REPORT" '
		    /<!-- bench:begin/ { while ((getline l < rep) > 0) print l; skip = 1; next }
		    /<!-- bench:end -->/ { skip = 0; next }
		    !skip' "$OUT" > "$D/out.md"
		cp "$D/out.md" "$OUT"
	else
		{ echo "# Benchmarks"; echo; cat "$REPORT"; } > "$OUT"
	fi
	echo "bench: wrote $OUT${PLOT:+ and $PLOT}"
fi

[ "$BAD_RUNS" -eq 0 ] || { echo "bench: $BAD_RUNS run(s) had non-2xx answers or errors" >&2; exit 1; }
exit 0
