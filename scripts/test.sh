#!/bin/sh
# The README's test command: install dependencies, build, run every
# test (make check), and print one summary line "N passed, M failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/install-deps.sh || exit 1
sh scripts/build.sh "$@" || exit 1
# The build is in the tree, or in $BUILD_DIR (see scripts/build.sh);
# only its own results are summed.
cd "${BUILD_DIR:-.}" || exit 1
make -s -j"$(nproc)" check >/dev/null 2>&1
rc=$?
sh "$top/scripts/summary.sh" "$(pwd)/tests"
exit $rc
