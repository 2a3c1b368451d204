# scripts/bench/sections.sh: the measured sections of scripts/bench.sh
# (sourced by it, after configs.sh), each run when --only names it:
# 1 proxy (side by side with nginx), 2 budget, 3 slow upstream, 4 idle
# connections, 5 micro (bench-micro), 6 profile (where the time goes);
# then the audit writer's own figures from cmgate's /metrics.
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
