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
#   scripts/bench.sh --upload    only the document-upload section (a
#                                minute); rewrites only its own block
#                                of docs/benchmarks.md
#
# Options:
#   --duration S    seconds per measured run (default 5; smoke 1)
#   --rounds N      alternating rounds per cell; the median is kept
#                   (default 3; smoke 1)
#   --conns "LIST"  caller connections (default "1 32 256")
#   --workers N     the multi-loop cmgate row uses N workers (default:
#                   the number of CPUs, at least 2)
#   --only LIST     sections to run, comma-separated, of
#                   proxy,budget,slow,idle,micro,profile,upload
#                   (default all)
#   --upload        the same as --only upload: a products.documentation
#                   body with two 10 MiB images (about 28 MB) posted to
#                   cmgate and to nginx, 3 times each (wall time, CPU,
#                   peak RSS per upload), then the p99 of small GETs
#                   alone and during 4 concurrent uploads (smoke: two
#                   64 KiB images, once, 2 concurrent)
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
# The upload section's sizes can be set from the environment:
# UPLOAD_IMG_BYTES (each image, decoded), UPLOAD_N (uploads per side),
# UPLOAD_CONC (concurrent uploads), UPLOAD_SECS (each small-GET run).
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
#
# This file reads the options and builds; the work is in scripts/bench/
# (harness.sh, configs.sh, sections.sh, report.sh), sourced in order.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0
DURATION=
ROUNDS=
CONNS=
NWORKERS=
ONLY=proxy,budget,slow,idle,micro,profile,upload
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
	--upload) ONLY=upload ;;
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
	: "${UPLOAD_IMG_BYTES:=65536}" "${UPLOAD_N:=1}" "${UPLOAD_CONC:=2}"
	: "${UPLOAD_SECS:=1}"
else
	: "${DURATION:=5}" "${ROUNDS:=3}" "${CONNS:=1 32 256}"
	IDLE_CONNS=10000 SLOW_CONNS=1000 SLOW_SECS=10 MICRO_SECS=3
	CALLGRIND_N=2000 WARMUP=1
	: "${UPLOAD_IMG_BYTES:=$((10 * 1024 * 1024))}" "${UPLOAD_N:=3}"
	: "${UPLOAD_CONC:=4}" "${UPLOAD_SECS:=5}"
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

# The rest, in order, from scripts/bench/: one file per job.
BENCH_LIB=$top/scripts/bench
. "$BENCH_LIB/harness.sh"	# private folder, processes, measuring
. "$BENCH_LIB/configs.sh"	# nginx and cmgate configs; upstream, peer
. "$BENCH_LIB/sections.sh"	# the measured sections
. "$BENCH_LIB/report.sh"	# table, targets, plot, report; exit status
