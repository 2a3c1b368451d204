# ops-promtext.awk: a checker of the Prometheus text exposition format
# (version 0.0.4) plus cmgate's naming rules, for tests/e2e/ops-*.sh.
#
#   awk -f ops-promtext.awk [-v prefix=cmgate_] FILE
#
# Prints one line per problem ("line N: ...") and exits 1 when there is
# any, else prints "ok: S samples in F families" and exits 0.  Checks:
#   - every line is empty, "# HELP name text", "# TYPE name type", another
#     comment, or a sample "name{label="value",...} value [timestamp]";
#   - metric and label names are valid, label values properly escaped,
#     values are floats (or NaN, +Inf, -Inf);
#   - each family has one HELP and one TYPE, given before its samples,
#     and its samples are contiguous; no series appears twice;
#   - counters end in _total; histograms have _bucket (with le), _sum
#     and _count, buckets never decrease, and le="+Inf" equals _count;
#   - every name starts with prefix, and no name carries a non-base unit
#     (_ms, _milliseconds, _kb, ...).
# POSIX awk only (Debian's mawk).

function problem(msg) {
	printf("line %d: %s\n", NR, msg)
	bad++
}

function valid_name(s) {
	return s ~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
}

function valid_value(s) {
	return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ ||
	    s == "NaN" || s == "+Inf" || s == "-Inf"
}

# The family a sample name belongs to, given the declared types.
function family_of(n,    base) {
	if (n in type)
		return n
	if (n ~ /_bucket$/) {
		base = substr(n, 1, length(n) - 7)
		if (type[base] == "histogram")
			return base
	}
	if (n ~ /_sum$/ || n ~ /_count$/) {
		base = n
		sub(/_(sum|count)$/, "", base)
		if (type[base] == "histogram" || type[base] == "summary")
			return base
	}
	return n
}

# Parse the label set at s (which starts with "{"); sets LABELS to the
# canonical text, LE to the le label ("" when none), REST to what
# follows "}".  Returns 0 on a syntax error.
function parse_labels(s,    i, c, name, val, n, seen) {
	LABELS = ""
	LE = ""
	i = 2
	n = length(s)
	split("", seen)
	while (1) {
		if (substr(s, i, 1) == "}") {
			REST = substr(s, i + 1)
			return 1
		}
		name = ""
		while (i <= n && substr(s, i, 1) ~ /[a-zA-Z0-9_]/) {
			name = name substr(s, i, 1)
			i++
		}
		if (name == "" || name !~ /^[a-zA-Z_][a-zA-Z0-9_]*$/ ||
		    substr(s, i, 2) != "=\"")
			return 0
		if (name in seen) {
			problem("label " name " given twice")
			return 0
		}
		seen[name] = 1
		i += 2
		val = ""
		while (1) {
			if (i > n)
				return 0
			c = substr(s, i, 1)
			if (c == "\\") {
				c = substr(s, i + 1, 1)
				if (c != "\\" && c != "\"" && c != "n")
					return 0
				val = val "\\" c
				i += 2
				continue
			}
			if (c == "\"")
				break
			val = val c
			i++
		}
		i++
		if (name == "le")
			LE = val
		LABELS = LABELS (LABELS == "" ? "" : ",") name "=\"" val "\""
		c = substr(s, i, 1)
		if (c == ",") {
			i++
			if (substr(s, i, 1) == "}") {
				REST = substr(s, i + 1)
				return 1
			}
		} else if (c != "}")
			return 0
	}
}

BEGIN {
	if (prefix == "")
		prefix = "cmgate_"
	bad = 0
	samples = 0
	families = 0
	last_family = ""
}

/^$/ { next }

/^#/ {
	if ($2 == "HELP") {
		if (!valid_name($3))
			problem("HELP for a bad name '" $3 "'")
		if ($3 in help)
			problem("second HELP for " $3)
		help[$3] = 1
		if (NF < 4)
			problem("HELP without text for " $3)
	} else if ($2 == "TYPE") {
		if (!valid_name($3))
			problem("TYPE for a bad name '" $3 "'")
		if ($3 in type)
			problem("second TYPE for " $3)
		if ($3 in sampled)
			problem("TYPE for " $3 " after its samples")
		if (NF != 4 || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/)
			problem("bad TYPE line")
		type[$3] = $4
		families++
		if ($4 == "counter" && $3 !~ /_total$/)
			problem("counter " $3 " does not end in _total")
		if ($4 != "counter" && $3 ~ /_total$/)
			problem($4 " " $3 " ends in _total")
	}
	next
}

{
	line = $0
	if (match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/) == 0) {
		problem("not a sample: " line)
		next
	}
	name = substr(line, 1, RLENGTH)
	rest = substr(line, RLENGTH + 1)
	LABELS = ""
	LE = ""
	if (substr(rest, 1, 1) == "{") {
		if (!parse_labels(rest)) {
			problem("bad label set: " line)
			next
		}
		rest = REST
	}
	if (substr(rest, 1, 1) != " ") {
		problem("no space before the value: " line)
		next
	}
	n = split(rest, f, " ")
	if (n < 1 || n > 2 || !valid_value(f[1]) ||
	    (n == 2 && f[2] !~ /^-?[0-9]+$/)) {
		problem("bad value: " line)
		next
	}
	samples++
	fam = family_of(name)
	if (!(fam in type))
		problem("sample of " name " without a TYPE")
	if (!(fam in help))
		problem("sample of " name " without a HELP")
	if (index(name, prefix) != 1)
		problem(name " does not start with " prefix)
	if (name ~ /_(ms|us|ns|milliseconds|microseconds|minutes|hours|kb|mb|kilobytes|megabytes)(_|$)/)
		problem(name " is not in base units")
	if (fam != last_family) {
		if (fam in done)
			problem("samples of " fam " are not together")
		if (last_family != "")
			done[last_family] = 1
		last_family = fam
	}
	sampled[fam] = 1
	key = name "{" LABELS "}"
	if (key in series)
		problem("series given twice: " key)
	series[key] = 1

	if (type[fam] == "histogram") {
		if (name == fam "_bucket") {
			if (LE == "") {
				problem("bucket without le: " line)
				next
			}
			grp = LABELS
			sub(/(^|,)le="[^"]*"/, "", grp)
			sub(/^,/, "", grp)
			g = fam "{" grp "}"
			if ((g in lastb) && f[1] + 0 < lastb[g] + 0)
				problem("bucket count decreases: " line)
			lastb[g] = f[1]
			if (LE == "+Inf")
				inf[g] = f[1]
		} else if (name == fam "_count") {
			g = fam "{" LABELS "}"
			cnt[g] = f[1]
		} else if (name == fam "_sum") {
			g = fam "{" LABELS "}"
			sum[g] = 1
		} else
			problem("histogram sample " name)
	}
}

END {
	for (g in lastb) {
		if (!(g in inf))
			printf("%s: no le=\"+Inf\" bucket\n", g)
		else if (!(g in cnt))
			printf("%s: no _count\n", g)
		else if (inf[g] + 0 != cnt[g] + 0)
			printf("%s: +Inf bucket %s != _count %s\n", g, inf[g],
			    cnt[g])
		else if (!(g in sum))
			printf("%s: no _sum\n", g)
		else
			continue
		bad++
	}
	if (samples == 0) {
		print "no samples at all"
		bad++
	}
	if (bad > 0)
		exit 1
	printf("ok: %d samples in %d families\n", samples, families)
}
