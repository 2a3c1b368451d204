#!/bin/sh
# bench-audit.sh: the cost of a durable audit record with group commit.
#
# usage: scripts/bench-audit.sh [BUILDDIR] [DIR] [SECONDS]
#
# Runs tests/audit-gen bench (the gateway's own writer: one event loop,
# C submitters each sending its next record, a request then its outcome,
# as soon as the last one is durable) at 1, 8, 32 and 128 concurrent submitters, on a log in DIR
# (default: a fresh folder under $TMPDIR or /var/tmp; put it on the disk
# the gateway will use).  Prints records/s and the latency a record adds,
# from submit to its callback on the loop (p50/p99/max).  Build first:
# make tests/audit-gen.
set -eu
builddir=${1:-.}
dir=${2:-}
secs=${3:-3}
gen=$builddir/tests/audit-gen
[ -x "$gen" ] || { echo "bench-audit: build $gen first (make tests/audit-gen)" >&2; exit 2; }
own=
if [ -z "$dir" ]; then
	dir=$(mktemp -d "${TMPDIR:-/var/tmp}/cmgate-bench-audit.XXXXXX")
	own=1
fi
fs=$(df -T "$dir" 2>/dev/null | awk 'NR==2 {print $2 " on " $1}')
echo "# audit group commit on $dir ($fs), ${secs}s per run, $(nproc) CPU(s)"
printf '%-11s %10s %8s %8s %8s %10s %9s\n' submitters records/s p50_us \
    p99_us max_us rec/batch fsync_us
for c in 1 8 32 128; do
	rm -rf "$dir/run"
	"$gen" bench "$dir/run" --concurrency "$c" --seconds "$secs" 2>/dev/null |
	    sed 's/[a-z_0-9]*=//g' |
	    awk '{ printf "%-11s %10s %8s %8s %8s %10s %9s\n", $1, $4, $5, $6,
		$7, $8, $9 }'
done
rm -rf "$dir/run"
[ -n "$own" ] && rmdir "$dir"
exit 0
