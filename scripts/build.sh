#!/bin/sh
# Configure and build cmgate in the source tree (or in $BUILD_DIR when
# set, out of tree).  Extra arguments go to ./configure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null 2>&1
if [ -n "${BUILD_DIR:-}" ]; then
	mkdir -p "$BUILD_DIR"; cd "$BUILD_DIR"
fi
if [ ! -f Makefile ] || [ -n "$*" ]; then
	"$top/configure" --quiet "$@"
fi
make -s -j"$(nproc)"
