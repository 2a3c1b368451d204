# tests/e2e/budget-common.sh: helpers for the upstream budget tests
# (sourced after tests/lib.sh; not a test itself).

# fire N TOKEN NAME [TAG]: N requests at once (curl --parallel) as
# TOKEN; one line per answer "CODE RETRY_AFTER TIME_TOTAL BODYFILE" in
# $T/NAME.codes (RETRY_AFTER is "-" when absent).  Runs of fire at the
# same time need different TAGs (their body files).
fire() {
	local n=$1 tok=$2 name=$3 tag=${4:-0} i=0 cfg
	cfg=$T/$name.$tag.curl
	: > "$cfg"
	while [ $i -lt "$n" ]; do
		printf 'url = "%s/management/clients/individuals"\noutput = "%s/%s.out.%s.%d"\n' \
		    "$GW_URL" "$T" "$name" "$tag" $i >> "$cfg"
		i=$((i + 1))
	done
	curl -s --no-progress-meter --parallel --parallel-max "$n" \
	    --parallel-immediate -K "$cfg" \
	    -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	    --data-binary @"$SEED" \
	    -w '%{http_code} %header{retry-after} %{time_total} %{filename_effective}\n' |
	    awk '{ if (NF == 3) { $4 = $3; $3 = $2; $2 = "-" } print; fflush() }' \
	    >> "$T/$name.codes"
}

# count_codes NAME REGEX: answers in $T/NAME.codes whose status matches
count_codes() { awk -v re="^($2)\$" '$1 ~ re { n++ } END { print n + 0 }' "$T/$1.codes"; }

# arrivals [CALLER]: the mock's arrival times (seconds), sorted; with
# CALLER only that caller's (matched by X-Request-Id through the
# gateway's access log).
arrivals() {
	if [ -z "${1:-}" ]; then
		sed -n 's/^{"t":\([0-9.]*\),.*/\1/p' "$T/mock.log" | sort -n
		return
	fi
	log_settle
	grep '"msg":"request"' "$T/gw.log" | grep "\"caller\":\"$1\"" |
	    sed -n 's/.*"request_id":"\([0-9a-f]*\)".*/\1/p' > "$T/ids.$1"
	sed -n 's/^{"t":\([0-9.]*\),.*"x-request-id":"\([0-9a-f]*\)".*/\2 \1/p' \
	    "$T/mock.log" | awk -v f="$T/ids.$1" '
	    BEGIN { while ((getline l < f) > 0) want[l] = 1 }
	    ($1 in want) { print $2 }' | sort -n
}

# max_per_second: the most arrivals (times on stdin, sorted) in any
# window (t - 1 s, t], as the mock counts them.
max_per_second() {
	awk '{ t[NR] = $1; while (t[w + 1] <= $1 - 1.0) w++; if (NR - w > m) m = NR - w }
	    END { print m + 0 }'
}

# min_gap: the shortest time between two arrivals (sorted, on stdin), ms.
min_gap() {
	awk 'NR > 1 { g = ($1 - p) * 1000; if (m == "" || g < m) m = g } { p = $1 }
	    END { printf "%d\n", m == "" ? 999999 : m }'
}

# queue_ms CALLER: the largest queue_ms in the access log for CALLER.
max_queue_ms() {
	log_settle
	grep '"msg":"request"' "$T/gw.log" | grep "\"caller\":\"$1\"" |
	    sed -n 's/.*"queue_ms":\([0-9.]*\).*/\1/p' |
	    awk '{ if ($1 > m) m = $1 } END { printf "%d\n", m }'
}

# healthz: GET /healthz into $T/healthz
healthz() { curl -s -o "$T/healthz" "$GW_URL/healthz"; tr -d ' \n' < "$T/healthz"; }
