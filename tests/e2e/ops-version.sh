#!/bin/bash
# One version string: `cmgate --version`, the audit log's start record
# ("gateway":"cmgate/X") and the metrics' build_info all print the
# version configure.ac gives AC_INIT (config.h's PACKAGE_VERSION; no
# source file carries a fallback copy of it).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

want=$(sed -n 's/^AC_INIT(\[cmgate\], *\[\([^]]*\)\].*/\1/p' \
    "$top_srcdir/configure.ac")
check_match "configure.ac names a version" "$want" '^[0-9]+\.[0-9]+'

v=$("$CMGATE" --version | head -n1 | cut -d' ' -f2)
check "cmgate --version is configure.ac's" "$v" "$want"

start_mock
make_config
start_gw
# The start record is written before the gateway says it is listening.
start=$(grep -m1 '"type":"start"' "$T/audit.log")
a=$(printf '%s' "$start" | grep -o '"gateway":"[^"]*"' | sed 's/.*"cmgate\///; s/"$//')
check "the audit start record names configure.ac's version" "$a" "$want"
check "cmgate --version and the start record agree" "$v" "$a"

curl -s "$GW_URL/metrics" > "$T/metrics.txt"
m=$(sed -n 's/^cmgate_build_info{version="\([^"]*\)".*/\1/p' "$T/metrics.txt")
check "the metrics' build_info names configure.ac's version" "$m" "$want"
finish
