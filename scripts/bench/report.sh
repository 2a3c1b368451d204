# scripts/bench/report.sh: the report of scripts/bench.sh (sourced by
# it, last): the table (the median round of each cell), the targets
# (pass/fail; the exit status), the latency plot, and the Markdown block
# written between the bench markers of --out.
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

# The upload section's table (one row per system).
UPLOAD_TABLE=$D/upload.md
if [ -s "$UPLOAD_RESULTS" ]; then
	{
		echo "| system | body | uploads | wall s per upload, median (min-max) | CPU s per upload (median) | peak RSS rise per upload, MiB (median; peak total) | small GETs alone: p99 ms (count) | small GETs during $UPLOAD_CONC concurrent uploads: p50 / p99 ms (count) | uploads done meanwhile (proxy CPU s; peak RSS MiB) | non-2xx + errors |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		while IFS=$'\t' read -r l n wm wlo whi cm rise pk ga pa gc p50c p99c nc ccpu cpk bad; do
			echo "| $l | $(awk -v b="$UPLOAD_BODY" 'BEGIN{printf "%.1f MB", b/1e6}') | $n | $(awk -v m="$wm" -v a="$wlo" -v b="$whi" 'BEGIN{printf "%.3f (%.3f-%.3f)", m, a, b}') | $cm | $(awk -v r="$rise" -v p="$pk" 'BEGIN{printf "%.1f; %.1f", r/1024, p/1024}') | $(fmt_ms "$pa") ($ga) | $(fmt_ms "$p50c") / $(fmt_ms "$p99c") ($gc) | $nc ($ccpu; $(awk -v k="$cpk" 'BEGIN{printf "%.1f", k/1024}')) | $bad |"
		done < "$UPLOAD_RESULTS"
	} > "$UPLOAD_TABLE"
fi

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

if [ "$(wc -l < "$TABLE")" -gt 2 ]; then
	echo
	cat "$TABLE"
fi
echo
if [ -s "$UPLOAD_TABLE" ]; then
	echo "document upload:"
	cat "$UPLOAD_TABLE"
	echo
fi
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
# replace_block FILE BEGIN END BLOCK: put BLOCK (a file holding its own
# markers) in place of the lines from the one holding BEGIN to the one
# holding END; without them, BLOCK goes at the end of FILE (made if
# need be).
replace_block() {
	if [ -f "$1" ] && grep -q -- "$2" "$1" && grep -q -- "$3" "$1"; then
		awk -v rep="$4" -v b="$2" -v e="$3" '
		    index($0, b) { while ((getline l < rep) > 0) print l; skip = 1; next }
		    index($0, e) { skip = 0; next }
		    !skip' "$1" > "$D/out.md"
		cp "$D/out.md" "$1"
	elif [ -f "$1" ]; then
		{ echo; cat "$4"; } >> "$1"
	else
		{ echo "# Benchmarks"; echo; cat "$4"; } > "$1"
	fi
}
if [ "$OUT" != - ] && [ -s "$UPLOAD_TABLE" ]; then
	mkdir -p "$(dirname "$OUT")"
	{
		echo "<!-- bench-upload:begin (written by scripts/bench.sh; edit outside these markers) -->"
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$top" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
		echo "- machine: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1), $NCPU CPU(s), Linux $(uname -r); load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER"
		echo "- software: $("$NGINX" -v 2>&1 | sed 's/.*version: //'), $(curl -V | head -n1 | cut -d' ' -f1-2), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), $("$CMGATE" --version)"
		echo "- command: \`scripts/bench.sh --upload\`: a products.documentation body with two $((UPLOAD_IMG_BYTES / 1024)) KiB JPEG-signed random images in base64 ($UPLOAD_BODY bytes), curl --data-binary, $UPLOAD_N upload(s) per side alternating, each cmgate upload on a fresh process; then wrk -t1 -c1 GET individuals/countries for ${UPLOAD_SECS} s alone and ${UPLOAD_SECS} s while $UPLOAD_CONC curl lanes post the body back to back; both proxies forward over HTTP to the same fixed-answer nginx"
		echo "- CPU = user + system time of the proxy's processes (all cmgate threads; nginx master + worker), from /proc/PID/stat; peak RSS rise = VmHWM after the upload minus VmRSS before it (VmHWM reset with clear_refs); the upstream's and curl's CPU are not counted"
		echo
		cat "$UPLOAD_TABLE"
		echo "<!-- bench-upload:end -->"
	} > "$D/upload-report.md"
	replace_block "$OUT" "<!-- bench-upload:begin" "<!-- bench-upload:end -->" "$D/upload-report.md"
	echo "bench: wrote the upload block of $OUT"
fi
MAIN=0
for sec in proxy budget slow idle micro profile; do want $sec && MAIN=1; done
if [ "$OUT" != - ] && [ "$MAIN" = 1 ]; then
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
	replace_block "$OUT" "<!-- bench:begin" "<!-- bench:end -->" "$REPORT"
	echo "bench: wrote $OUT${PLOT:+ and $PLOT}"
fi

[ "$BAD_RUNS" -eq 0 ] || { echo "bench: $BAD_RUNS run(s) had non-2xx answers or errors" >&2; exit 1; }
exit 0
