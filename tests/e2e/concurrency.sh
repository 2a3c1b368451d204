#!/bin/bash
# Non-blocking forwarding: 100 concurrent requests against an upstream
# that takes 0.5 s each finish in well under 2 s (a blocking design
# would take 50 s).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
start_mock -d 500
make_config
start_gw

cfg=$T/curl.cfg
: > "$cfg"
i=0
while [ $i -lt 100 ]; do
	printf 'url = "%s/management/clients/individuals"\noutput = "%s/out.%d"\n' "$GW_URL" "$T" $i >> "$cfg"
	i=$((i + 1))
done
t0=$(date +%s%N)
curl -s --parallel --parallel-max 100 --parallel-immediate -K "$cfg" \
    -H "Authorization: Bearer $TOKEN_A" -H 'Content-Type: application/json' \
    --data-binary @"$SEED" -w '%{http_code}\n' > "$T/codes"
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
check "100 answers" "$(wc -l < "$T/codes" | tr -d ' ')" 100
check "all 200" "$(grep -c '^200$' "$T/codes")" 100
check "upstream saw 100" "$(mock_count)" 100
echo "# 100 requests on a 0.5 s upstream took $ms ms"
check_range "finished in under 2 s (ms)" "$ms" 0 1999
finish
