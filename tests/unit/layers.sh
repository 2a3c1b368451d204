#!/bin/bash
# The layers of src/ run one way (issue #13): no include cycle among
# modules.  scripts/check-layers.sh says which cycle if there is one.
exec sh "${top_srcdir:-$(dirname "$0")/../..}/scripts/check-layers.sh" \
    "${top_srcdir:-$(dirname "$0")/../..}/src"
