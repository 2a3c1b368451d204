#!/bin/bash
# tests/unit/no-cmocka.sh: stands in for the unit tests when configure
# did not find cmocka (they are then not built).  Exit 77: skipped.
echo "SKIP: the unit tests (tests/unit/*.c) need cmocka, which configure did not find;"
echo "SKIP: install libcmocka-dev (scripts/install-deps.sh) and re-run configure to run them."
exit 77
