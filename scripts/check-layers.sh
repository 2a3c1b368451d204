#!/bin/sh
# Check that src/ has layers that run one way: no cycle among modules,
# where a module is src/NAME.c with src/NAME.h (and NAME_int.h, its
# private half, shared by the files of one module), and an edge is an
# #include "OTHER.h" in any of them.  tsort(1) finds the cycles.
# Prints the layer order (lowest first) and exits 0, or prints the
# cycle and exits 1.  Run by .ci/run and `make check-layers`.
set -eu
src=${1:-$(dirname "$0")/../src}
edges=$(for f in "$src"/*.c "$src"/*.h; do
	a=$(basename "$f"); a=${a%.*}; a=${a%_int}
	sed -n 's/^#include "\([A-Za-z0-9_]*\)\.h".*/\1/p' "$f" |
	while read -r b; do
		b=${b%_int}
		# config.h is autoconf's, not a module.
		[ "$b" = "$a" ] || [ "$b" = config ] || echo "$b $a"
	done
done | sort -u)
if ! out=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null) || [ -n "$out" ]; then
	echo "check-layers: include cycle:"
	printf '%s\n' "$out" | sed 's/^tsort: /  /'
	exit 1
fi
echo "check-layers: no cycle; lowest first:"
printf '%s\n' "$edges" | tsort | tr '\n' ' '
echo
