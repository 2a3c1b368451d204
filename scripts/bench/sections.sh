# scripts/bench/sections.sh: the measured sections of scripts/bench.sh
# (sourced by it, after configs.sh), each run when --only names it:
# 1 proxy (side by side with nginx), 2 budget, 3 slow upstream, 4 idle
# connections, 5 micro (bench-micro), 6 profile (where the time goes),
# 7 upload (a 28 MB document upload, side by side with nginx); then the
# audit writer's own figures from cmgate's /metrics.
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
PROFILE= PROFILE_SYMS= THREADS= SYSCALLS= VCSW=
if want profile && [ "$SMOKE" = 0 ] && [ -n "${URL_c1h:-}" ]; then
	echo "bench: where the time goes (cmgate, 1 loop, http, 32 connections)"
	tticks() { # tid ticks, one line per thread
		local t
		for t in /proc/$PID_c1h/task/*; do
			echo "${t##*/} $(cut -d')' -f2 "$t/stat" | awk '{ print $12 + $13 }')"
		done
	}
	vcsw() { # voluntary context switches, all threads
		cat /proc/$PID_c1h/task/*/status 2>/dev/null |
		    awk '/^voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
	}
	tticks > "$D/t0"
	v0=$(vcsw)
	out=$(wrk -t1 -c32 -d"${DURATION}s" -s "$D/post.lua" \
	    "$URL_c1h/management/clients/individuals" 2>&1 || true)
	v1=$(vcsw)
	tticks > "$D/t1"
	req=$(wrk_field "$(grep '^WRK ' <<<"$out")" requests)
	VCSW=$(awk -v d=$((v1 - v0)) -v r="${req:-0}" 'BEGIN {
	    printf "voluntary context switches per request (all threads): %.2f", d / (r ? r : 1) }')
	echo "  $VCSW"
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

# ---- 7. document upload: two 10 MiB images, about 28 MB ------------
# products.documentation with two JPEG-signed random images in base64
# (as tests/e2e/kyc-upload.sh makes them), to cmgate (validates both
# images, digests them, audits, forwards) and to nginx proxying the
# same path; both forward to the fixed-answer upstream over HTTP.
# Per upload, UPLOAD_N times each, alternating: wall time (curl's
# time_total), CPU of the proxy's processes (all threads) and how much
# its peak RSS rose above the RSS before the upload (VmHWM after
# clear_refs).  Each cmgate upload gets a fresh process, so memory
# kept by the allocator from an earlier upload cannot hide the cost;
# nginx keeps no body in memory (it spools it to a file) and is not
# restarted.  Then small GETs (individuals/countries, forwarded by
# both) with wrk -c1: alone, and while UPLOAD_CONC uploads run back to
# back; their p50 and p99.  One line per system in $UPLOAD_RESULTS.
UPLOAD_RESULTS=$D/upload.tsv
: > "$UPLOAD_RESULTS"
if want upload; then
	UPATH=/management/clients/individuals/bench-client-1/products/bench-pr-1/documentation
	GPATH=/management/clients/individuals/countries
	UCALLER=', "allow": ["individuals.*", "products.*"], "clients": "all"'
	img() { # img FILE BYTES: a JPEG signature, then random bytes
		{ printf '\377\330\377\340'; head -c $(($2 - 4)) /dev/urandom; } > "$1"
	}
	img "$D/front.jpg" "$UPLOAD_IMG_BYTES"
	img "$D/back.jpg" "$UPLOAD_IMG_BYTES"
	{
		printf '{"document":{"document_type":"national_id","image_front":"data:image/jpeg;base64,'
		base64 -w0 < "$D/front.jpg"
		printf '","image_back":"data:image/jpeg;base64,'
		base64 -w0 < "$D/back.jpg"
		printf '","metadata":{"number":"30111222"}}}'
	} > "$D/doc.json"
	rm -f "$D/front.jpg" "$D/back.jpg"
	UPLOAD_BODY=$(stat -c %s "$D/doc.json")
	{
		echo 'wrk.method = "GET"'
		printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$TOKEN"
		sed -n '/^function done/,/^end/p' "$D/post.lua"
	} > "$D/get.lua"
	up_post() { # up_post URL: one upload; prints "code time_total"
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
		    --max-time 120 -H "Authorization: Bearer $TOKEN" \
		    -H 'Content-Type: application/json' \
		    --data-binary @"$D/doc.json" "$1$UPATH" || echo "000 0"
	}
	# upload_one SYS URL: one measured upload; one line to
	# $D/upl-SYS.tsv: code wall_s cpu_s rss_before_kb peak_kb
	upload_one() {
		local pids r0 t0 t1 out
		pids=$(sys_pids "$1")
		# shellcheck disable=SC2086
		reset_peak $pids
		# shellcheck disable=SC2086
		r0=$(rss_kb $pids) t0=$(cpu_ticks $pids)
		out=$(up_post "$2")
		# shellcheck disable=SC2086
		t1=$(cpu_ticks $pids)
		# shellcheck disable=SC2086
		printf '%s %s %s %s\n' "$out" \
		    "$(awk -v t=$((t1 - t0)) -v k="$CLK_TCK" 'BEGIN{printf "%.2f", t/k}')" \
		    "$r0" "$(peak_kb $pids)" >> "$D/upl-$1.tsv"
	}
	# small_gets SYS URL TAG: wrk -c1 GETs for UPLOAD_SECS; prints
	# the WRK line; with TAG "conc", UPLOAD_CONC lanes post uploads
	# back to back meanwhile (their "code time" lines in
	# $D/conc-SYS.txt; CPU and peak RSS in $D/conc-SYS.res).
	small_gets() {
		local sys=$1 url=$2 tag=$3 lanes= i pids t0 t1 out
		pids=$(sys_pids "$sys")
		: > "$D/conc-$sys.txt"
		rm -f "$D/stop"
		# shellcheck disable=SC2086
		reset_peak $pids
		# shellcheck disable=SC2086
		t0=$(cpu_ticks $pids)
		if [ "$tag" = conc ]; then
			for i in $(seq "$UPLOAD_CONC"); do
				( while [ ! -e "$D/stop" ]; do
					up_post "$url" >> "$D/conc-$sys.txt"
				done ) &
				lanes="$lanes $!"
			done
			# every lane has its body on the wire before wrk starts
			sleep 0.3
		fi
		out=$(wrk -t1 -c1 -d"${UPLOAD_SECS}s" -s "$D/get.lua" \
		    "$url$GPATH" 2>&1) || true
		touch "$D/stop"
		# shellcheck disable=SC2086
		[ -z "$lanes" ] || wait $lanes
		# shellcheck disable=SC2086
		t1=$(cpu_ticks $pids)
		# shellcheck disable=SC2086
		[ "$tag" != conc ] || echo "$((t1 - t0)) $(peak_kb $pids)" > "$D/conc-$sys.res"
		grep '^WRK ' <<<"$out" ||
		    echo "WRK requests=0 duration_us=1 p50=0 p99=0 p999=0 max=0 non2xx=1 connect=0 read=0 write=0 timeout=0"
	}
	echo "bench: document upload, a $(awk -v b="$UPLOAD_BODY" 'BEGIN{printf "%.1f", b/1e6}') MB body (two $((UPLOAD_IMG_BYTES / 1024)) KiB images), $UPLOAD_N per side; then small GETs during $UPLOAD_CONC concurrent uploads, ${UPLOAD_SECS}s"
	: > "$D/upl-peer.tsv"
	for i in $(seq "$UPLOAD_N"); do
		upload_one peer "http://127.0.0.1:$PEER_HTTP"
		start_cmgate "upl$i" 1 "http://127.0.0.1:$UP_HTTP" 0 "" "$UCALLER"
		eval "u=\$URL_upl$i p=\$PID_upl$i"
		upload_one "upl$i" "$u"
		cat "$D/upl-upl$i.tsv" >> "$D/upl-cm.tsv"
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	start_cmgate uplc 1 "http://127.0.0.1:$UP_HTTP" 0 "" "$UCALLER"
	for s in peer uplc; do
		if [ $s = peer ]; then
			url=http://127.0.0.1:$PEER_HTTP f=$D/upl-peer.tsv l=nginx
		else
			url=$URL_uplc f=$D/upl-cm.tsv l="cmgate, 1 loop"
		fi
		alone=$(small_gets $s "$url" alone)
		conc=$(small_gets $s "$url" conc)
		read -r cticks cpeak < "$D/conc-$s.res"
		nconc=$(wc -l < "$D/conc-$s.txt")
		# bad: uploads not 200, small GETs not 2xx or failed
		bad=$(( $(awk '$1 != 200' "$f" "$D/conc-$s.txt" | wc -l) ))
		for w in "$alone" "$conc"; do
			bad=$((bad + $(wrk_field "$w" non2xx) + $(wrk_field "$w" connect) +
			    $(wrk_field "$w" read) + $(wrk_field "$w" write) +
			    $(wrk_field "$w" timeout)))
			[ "$(wrk_field "$w" requests)" -gt 0 ] || bad=$((bad + 1))
		done
		[ "$bad" -eq 0 ] || BAD_RUNS=$((BAD_RUNS + 1))
		# label n wall_med wall_min wall_max cpu_med rise_med_kb
		# peak_med_kb gets_alone p99_alone_us gets_conc p50_conc_us
		# p99_conc_us uploads_conc conc_cpu_s conc_peak_kb bad
		med() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		    "$l" "$(wc -l < "$f")" \
		    "$(awk '{print $2}' "$f" | med)" \
		    "$(awk '{print $2}' "$f" | sort -n | head -n1)" \
		    "$(awk '{print $2}' "$f" | sort -n | tail -n1)" \
		    "$(awk '{print $3}' "$f" | med)" \
		    "$(awk '{print $5 - $4}' "$f" | med)" \
		    "$(awk '{print $5}' "$f" | med)" \
		    "$(wrk_field "$alone" requests)" "$(wrk_field "$alone" p99)" \
		    "$(wrk_field "$conc" requests)" "$(wrk_field "$conc" p50)" \
		    "$(wrk_field "$conc" p99)" "$nconc" \
		    "$(awk -v t="$cticks" -v k="$CLK_TCK" 'BEGIN{printf "%.2f", t/k}')" \
		    "$cpeak" "$bad" >> "$UPLOAD_RESULTS"
		IFS=$'\t' read -r _ n wm _ _ cm rise _ _ pa _ _ pc nc _ _ _ < <(tail -n1 "$UPLOAD_RESULTS")
		printf '  %-16s %s uploads: wall %.2f s, CPU %.2f s, RSS +%.1f MiB; small GETs p99 %.2f ms alone, %.2f ms during %d uploads  %s\n' \
		    "$l" "$n" "$wm" "$cm" "$(awk -v k="$rise" 'BEGIN{print k/1024}')" \
		    "$(awk -v v="$pa" 'BEGIN{print v/1000}')" \
		    "$(awk -v v="$pc" 'BEGIN{print v/1000}')" "$nc" \
		    "$([ "$bad" -eq 0 ] && echo ok || echo "NOT OK: $bad non-2xx/errors")"
	done
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
	# (an "if": a false test last in this sourced file would end the
	# script under set -e when no proxy cmgate ran, as with --upload)
	if [ -n "$line" ]; then
		AUDIT_STATS="$AUDIT_STATS- $line
"
	fi
done
