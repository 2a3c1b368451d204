#!/bin/bash
# scripts/bench.sh --smoke: a few seconds of the benchmark on the
# binaries just built, so the script cannot rot (issue 8).  It proves
# nothing about speed; it checks that every section runs, that the
# table holds both systems side by side, that the report is written
# between its markers, and that a non-2xx answer is caught.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
for t in nginx wrk; do
	command -v $t >/dev/null 2>&1 || [ -x /usr/sbin/$t ] ||
	    { echo "skip: $t is not installed (scripts/install-deps.sh)"; exit 77; }
done
BENCH=$top_srcdir/scripts/bench.sh

# A report with hand-written text around the markers: the text stays.
printf '# Benchmarks\n\nhand-written intro\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\nhand-written analysis\n' > "$T/bench.md"
bash "$BENCH" --smoke --no-build --build-dir "$top_builddir" \
    --out "$T/bench.md" > "$T/out" 2>&1
rc=$?
out=$(cat "$T/out")
check "bench.sh --smoke exits 0" "$rc" 0
for scheme in http https; do
	check_match "nginx row ($scheme)" "$out" "\| nginx \| $scheme \| 8 \| [0-9]+ \| 1 \|"
	check_match "cmgate 1-loop row ($scheme)" "$out" \
	    "\| cmgate, 1 loop, budget off \| $scheme \| 8 \| [0-9]+ \| [0-9.]+ "
	check_match "cmgate workers row ($scheme)" "$out" \
	    "\| cmgate, [0-9]+ workers, budget off \| $scheme \| 8 \| [0-9]+ \|"
done
check_match "default-budget row" "$out" '\| cmgate, budget on \(14/s\) \| http \| 32 \|'
check_match "slow-upstream row" "$out" '\| cmgate, slow upstream \| http \| 50 \|'
check_match "idle connections held (cmgate and nginx)" \
    "$(grep -c 'holding 200 connections (200 answered 200, 0 failed)' "$T/out")" '^2$'
# The upload section: both systems, every upload and small GET 2xx.
for l in 'nginx' 'cmgate, 1 loop'; do
	check_match "upload row ($l)" "$out" \
	    "\| $l \| 0\.2 MB \| 1 \| [0-9.]+ \([0-9.-]+\) \| [0-9.]+ \| [0-9.]+; [0-9.]+ \| [0-9.]+ \([1-9][0-9]*\) \| [0-9.]+ / [0-9.]+ \([1-9][0-9]*\) \| [1-9][0-9]* \([0-9.; ]+\) \| 0 \|"
done
check_match "microbenchmark line" "$out" 'micro: [0-9]+ requests in .* req/s per core'
check_match "no run flagged" "$out" '0 run\(s\) flagged'
check_match "audit disk probed" "$out" 'a durable 512-byte append took [0-9]+ us'
check_nomatch "no secrets in the output" "$out" 'bench-token-|bench-api-key-'
rep=$(cat "$T/bench.md")
check_match "report: intro kept" "$rep" 'hand-written intro'
check_match "report: analysis kept" "$rep" 'hand-written analysis'
check_nomatch "report: old block replaced" "$rep" '^old$'
check_match "report: table" "$rep" '\| nginx \| https \| 8 \|'
check_match "report: machine" "$rep" 'machine: .*CPU'
check_nomatch "report: no secrets" "$rep" 'bench-token-|bench-api-key-'
check_match "report: upload block (appended: no markers yet)" "$rep" \
    '<!-- bench-upload:begin.*'
check_match "report: upload table" "$rep" '\| cmgate, 1 loop \| 0\.2 MB \| 1 \|'
if command -v gnuplot >/dev/null 2>&1; then
	check "latency plot written beside the report" \
	    "$(head -c 4 "$T/benchmarks-latency.png" | tail -c 3)" PNG
	check_match "report links the plot" "$rep" '\(benchmarks-latency.png\)'
fi

# --upload rewrites its own block only: the main block and the text
# around both stay.
printf 'intro\n<!-- bench:begin -->\nmain block\n<!-- bench:end -->\nmiddle\n<!-- bench-upload:begin -->\nold upload\n<!-- bench-upload:end -->\nafter\n' > "$T/up.md"
bash "$BENCH" --smoke --no-build --build-dir "$top_builddir" --upload \
    --out "$T/up.md" > "$T/up.out" 2>&1
check "bench.sh --smoke --upload exits 0" "$?" 0
rep=$(cat "$T/up.md")
check_match "--upload: main block kept" "$rep" '^main block$'
check_nomatch "--upload: old upload block replaced" "$rep" '^old upload$'
check_match "--upload: new upload table" "$rep" '\| nginx \| 0\.2 MB \| 1 \|'
check "--upload: text around the blocks kept" \
    "$(grep -c -x -e intro -e middle -e after "$T/up.md")" 3
check_nomatch "--upload: no secrets" "$rep$(cat "$T/up.out")" 'bench-token-|bench-api-key-'

# Every cmgate answer a 401: the run must be flagged and the exit 1.
BENCH_SELFTEST_BAD_TOKEN=1 bash "$BENCH" --smoke --no-build \
    --build-dir "$top_builddir" --only budget --out - > "$T/bad" 2>&1
check "non-2xx answers make the script fail" "$?" 1
check_match "the run is flagged" "$(cat "$T/bad")" 'NOT OK: [0-9]+ non-2xx'
finish
