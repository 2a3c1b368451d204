/*
 * cmgate-audit: the auditors' tool for cmgate's audit log.
 *
 *   keygen FILE                      make K0 (32 random bytes, 0600)
 *   verify --key-file K0 LOG...      check MACs, chain, epochs, seals
 *   show LOG... [filters]            print records as JSON lines
 *   digest --key-file K0 --log-id ID FILE
 *                                    the body digest of a JSON body
 *   report --key-file K0 [...] LOG...
 *                                    verify, then the compliance report
 *                                    (HTML, or JSON; src/report.c)
 *
 * It reads the log through audit_format.c, the code the gateway
 * writes it with.  Exit codes of verify: 0 valid, 1 integrity failure,
 * 2 unverifiable (key or file unreadable, wrong key), 3 usage.
 */
#include "audit_format.h"
#include "report.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define EX_VALID	0
#define EX_INTEGRITY	1
#define EX_UNVERIFIABLE	2
#define EX_USAGE	3

static const char usage_text[] =
"usage: cmgate-audit COMMAND [OPTIONS] ...\n"
"\n"
"  keygen FILE\n"
"      Make the initial key K0 (32 random bytes as 64 hex digits) in FILE,\n"
"      mode 0600; refuses to overwrite.  Auditors keep K0; the gateway\n"
"      reads it once, at the first start of a log (audit.key_file).\n"
"\n"
"  verify --key-file K0 [--strict] [--json] [--anchor SEQ:HEAD]... LOG...\n"
"      Check every record's MAC, seq, prev link, epoch and seal.  Files\n"
"      of one log (rotated ones too) are put in chain order.  One line\n"
"      per finding: MODIFIED, MISSING, REORDERED, DUPLICATE, FORGED,\n"
"      SEAL_MISSING, EPOCH_VIOLATION, TORN_TAIL, TRUNCATED, FORK; then\n"
"      OPEN (a request with no outcome) and RECOVER as information, and\n"
"      a summary.  --anchor checks against a head exported earlier (a\n"
"      seal's seq and head): a log that ends before it is TRUNCATED, a\n"
"      different record there is a FORK.  --strict fails an unsealed\n"
"      tail.  --json prints one JSON object instead.\n"
"      Exit: 0 valid, 1 integrity failure, 2 unverifiable, 3 usage.\n"
"\n"
"  show [--request-id ID] [--caller NAME] [--client-id ID] [--since TIME]\n"
"       [--type TYPE] LOG...\n"
"      Print records as JSON lines (as stored; not verified).  TIME is\n"
"      an ISO 8601 UTC prefix such as 2026-11-26 or 2026-11-26T19:00.\n"
"      --client-id: one client's whole history: every record naming it\n"
"      (its path, the id CryptoMate assigned, an owner change), and the\n"
"      other records of those requests.\n"
"\n"
"  digest --key-file K0 --log-id ID FILE\n"
"      The body_digest a log in digest mode would hold for the JSON body\n"
"      in FILE (the normalized body as sent upstream).\n"
"\n"
"  report --key-file K0 [--since TIME] [--until TIME] [--anchor SEQ:HEAD]...\n"
"         [-o FILE] [--json] LOG...\n"
"      Verify the log as verify does, then write the compliance report:\n"
"      one self-contained HTML page (or, with --json, the same figures\n"
"      as one JSON object) to FILE or standard output.  Only records\n"
"      that verified and that no finding names are counted.  TIME is an\n"
"      ISO 8601 UTC prefix; --until is inclusive at its precision.\n"
"      Exit codes as verify's; a report is still written on 1 and 2.\n";

static void
usage(FILE *f)
{
	fputs(usage_text, f);
}

/* ------------------------------------------------------------------ */

/* K0 through the reader the gateway uses; says why on failure. */
static int
read_k0(const char *path, unsigned char k0[AFMT_KEY_LEN])
{
	char err[300];

	if (afmt_read_k0(path, k0, err, sizeof(err)) == -1) {
		fprintf(stderr, "cmgate-audit: %s\n", err);
		return -1;
	}
	return 0;
}

static int
cmd_keygen(int argc, char **argv)
{
	unsigned char k[AFMT_KEY_LEN];
	char hex[2 * AFMT_KEY_LEN + 2];
	int fd, rc = EX_UNVERIFIABLE;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: cmgate-audit keygen FILE\n");
		return EX_USAGE;
	}
	if ((fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1) {
		fprintf(stderr, "cmgate-audit: %s: %s%s\n", argv[1],
		    strerror(errno), errno == EEXIST ?
		    " (refusing to overwrite a key)" : "");
		return EX_UNVERIFIABLE;
	}
	if (RAND_bytes(k, sizeof(k)) != 1) {
		fprintf(stderr, "cmgate-audit: no randomness\n");
		goto out;
	}
	hex_encode(k, sizeof(k), hex);
	hex[2 * AFMT_KEY_LEN] = '\n';
	if (fchmod(fd, 0600) == -1 ||
	    write(fd, hex, 2 * AFMT_KEY_LEN + 1) != 2 * AFMT_KEY_LEN + 1 ||
	    fsync(fd) == -1) {
		fprintf(stderr, "cmgate-audit: %s: %s\n", argv[1],
		    strerror(errno));
		goto out;
	}
	fprintf(stderr, "cmgate-audit: wrote the initial key K0 to %s.\n"
	    "Auditors keep it (offline): it verifies every record and can "
	    "forge any.\nThe gateway needs it only for the first start of a "
	    "log; remove it from the host afterwards.\n", argv[1]);
	rc = EX_VALID;
out:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(hex, sizeof(hex));
	if (close(fd) == -1 && rc == EX_VALID)
		rc = EX_UNVERIFIABLE;
	if (rc != EX_VALID)
		(void)unlink(argv[1]);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Log files, read in bounded windows and put in chain order */

/*
 * A log file is read through one window of LOGFILE_WINDOW bytes, never
 * mapped whole: resident memory stays bounded whatever the size of the
 * log (the report's budget is 100 MiB for a million records).  A line
 * is at most AFMT_MAX_RECORD bytes, well inside the window; a longer
 * run without a newline is handed on in window-sized pieces, each of
 * which fails to parse as it would whole.
 */
#define LOGFILE_WINDOW	(1024 * 1024)	/* > AFMT_MAX_RECORD */

struct logfile {
	const char	*name;
	int		 fd;
	uint64_t	 size;
	uint64_t	 first_seq;	/* UINT64_MAX: none parsed */
	size_t		 order;		/* as given */
};

typedef int (*logfile_line_cb)(const char *line, size_t len, uint64_t off,
    void *arg);

/*
 * Call cb for each line of lf in order (len with its newline when there
 * is one; off is the line's file offset), through one window.  Stops
 * early when cb returns -1.  0, or -1 on a read error (reported).
 */
static int
logfile_lines(const struct logfile *lf, logfile_line_cb cb, void *arg)
{
	struct afmt_lines it;
	const char *line;
	char *buf;
	size_t have = 0, pos, len;
	uint64_t base = 0;	/* file offset of buf[0] */
	ssize_t n;
	bool eof = false;
	int rc = 0;

	if ((buf = malloc(LOGFILE_WINDOW)) == NULL) {
		fprintf(stderr, "cmgate-audit: out of memory\n");
		return -1;
	}
	while (!eof || have > 0) {
		if (!eof && have < LOGFILE_WINDOW) {
			n = pread(lf->fd, buf + have, LOGFILE_WINDOW - have,
			    (off_t)(base + have));
			if (n == -1) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "cmgate-audit: %s: %s\n",
				    lf->name, strerror(errno));
				rc = -1;
				break;
			}
			if (n == 0)
				eof = true;
			have += (size_t)n;
			if (!eof && have < LOGFILE_WINDOW)
				continue;
		}
		afmt_lines_init(&it, buf, have);
		while (afmt_lines_next(&it, &line, &len, &pos)) {
			if (line[len - 1] != '\n' && !eof && pos > 0) {
				it.off = pos;	/* read the rest first */
				break;
			}
			if (cb(line, len, base + pos, arg) == -1) {
				free(buf);
				return 0;
			}
		}
		pos = it.off;
		memmove(buf, buf + pos, have - pos);
		have -= pos;
		base += pos;
	}
	free(buf);
	return rc;
}

struct first_arg {
	uint64_t	 seq;
	int		 tries;
};

static int
logfile_first_line(const char *line, size_t len, uint64_t off, void *arg)
{
	struct first_arg *a = arg;
	struct afmt_rec r;

	(void)off;
	if (afmt_parse(line, len, &r) == 0) {
		a->seq = r.seq;
		return -1;
	}
	return ++a->tries >= 16 ? -1 : 0;
}

/* A stream may hold no more than this (a log is rotated long before). */
#define LOGFILE_STREAM_MAX	((uint64_t)1 << 34)

/*
 * A file that is not a regular file (a pipe, a FIFO, /dev/stdin) has no
 * size to trust and cannot be read twice: copy it, to its end, into an
 * unlinked temporary file, and read that instead (the windows read with
 * pread).  The new descriptor, or -1 with errno.
 */
static int
logfile_spool(int in)
{
	char buf[65536];
	uint64_t total = 0;
	ssize_t r, w;
	size_t off;
	FILE *tmp;
	int fd;

	if ((tmp = tmpfile()) == NULL)
		return -1;
	if ((fd = dup(fileno(tmp))) == -1) {
		fclose(tmp);
		return -1;
	}
	fclose(tmp);
	for (;;) {
		if ((r = read(in, buf, sizeof(buf))) == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if ((total += (uint64_t)r) > LOGFILE_STREAM_MAX) {
			errno = EFBIG;
			r = -1;
			break;
		}
		for (off = 0; off < (size_t)r; off += (size_t)w)
			if ((w = write(fd, buf + off, (size_t)r - off)) == -1) {
				if (errno == EINTR) {
					w = 0;
					continue;
				}
				close(fd);
				return -1;
			}
	}
	if (r == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
logfile_open(struct logfile *lf, const char *name, size_t order)
{
	struct stat st;
	struct first_arg fa = { UINT64_MAX, 0 };

	memset(lf, 0, sizeof(*lf));
	lf->name = name;
	lf->order = order;
	lf->first_seq = UINT64_MAX;
	if ((lf->fd = open(name, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(lf->fd, &st) == -1) {
		fprintf(stderr, "cmgate-audit: %s: %s\n", name, strerror(errno));
		if (lf->fd != -1)
			close(lf->fd);
		lf->fd = -1;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		/* A pipe, /dev/stdin, a FIFO: read once, to its end. */
		int fd = logfile_spool(lf->fd);

		close(lf->fd);
		if ((lf->fd = fd) == -1 || fstat(lf->fd, &st) == -1) {
			fprintf(stderr, "cmgate-audit: %s: %s\n", name,
			    strerror(errno));
			if (lf->fd != -1)
				close(lf->fd);
			lf->fd = -1;
			return -1;
		}
	}
	lf->size = (uint64_t)st.st_size;
	/* The first record that parses says where the file sits. */
	if (logfile_lines(lf, logfile_first_line, &fa) == -1) {
		close(lf->fd);
		lf->fd = -1;
		return -1;
	}
	lf->first_seq = fa.seq;
	return 0;
}

static void
logfile_close(struct logfile *lf)
{
	if (lf->fd != -1)
		close(lf->fd);
	lf->fd = -1;
}

static int
logfile_cmp(const void *x, const void *y)
{
	const struct logfile *a = x, *b = y;

	if (a->first_seq != b->first_seq)
		return a->first_seq < b->first_seq ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Files a glob such as audit.log* also matches but that are not part
 * of the chain: the key state and the copies of cut torn tails. */
static bool
not_a_log(const char *name)
{
	size_t n = strlen(name);

	return (n >= 6 && strcmp(name + n - 6, ".state") == 0) ||
	    (n >= 10 && strcmp(name + n - 10, ".state.tmp") == 0) ||
	    strstr(name, ".broken-") != NULL;
}

/* Map the logs given, in chain order; *np is how many were kept. */
static int
open_logs(int n, char **names, struct logfile **out, int *np)
{
	struct logfile *lf;
	int i, k = 0;

	if ((lf = calloc((size_t)n, sizeof(*lf))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (not_a_log(names[i])) {
			fprintf(stderr, "cmgate-audit: skipping %s: a key state "
			    "or a saved torn tail, not part of the log\n",
			    names[i]);
			continue;
		}
		if (logfile_open(&lf[k], names[i], (size_t)i) == -1) {
			while (k-- > 0)
				logfile_close(&lf[k]);
			free(lf);
			return -1;
		}
		k++;
	}
	if (k > 1)
		qsort(lf, (size_t)k, sizeof(*lf), logfile_cmp);
	*out = lf;
	*np = k;
	return 0;
}

/* ------------------------------------------------------------------ */
/* verify */

static int
vfy_line(const char *line, size_t len, uint64_t off, void *arg)
{
	afmt_vfy_line(arg, line, len, off);
	return 0;
}

/* Feed the files, in chain order, to v.  -1 on a read error. */
static int
verify_files(struct afmt_vfy *v, struct logfile *files, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		afmt_vfy_file(v, files[i].name);
		if (logfile_lines(&files[i], vfy_line, v) == -1)
			return -1;
	}
	return 0;
}

struct found {
	struct afmt_finding	 f;
	size_t			 fileidx;
	size_t			 n;	/* arrival order */
};

struct findings {
	struct found		*v;
	size_t			 n, cap;
	struct logfile		*files;
	size_t			 nfiles;
};

static void
collect(const struct afmt_finding *f, void *arg)
{
	struct findings *fs = arg;
	struct found *n;
	size_t i;

	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 64;
		if ((n = realloc(fs->v, cap * sizeof(*n))) == NULL)
			return;
		fs->v = n;
		fs->cap = cap;
	}
	n = &fs->v[fs->n];
	n->f = *f;
	n->n = fs->n++;
	n->fileidx = fs->nfiles;
	for (i = 0; i < fs->nfiles; i++)
		if (fs->files[i].name == f->file)
			n->fileidx = i;
}

/* Failures in file and line order, then information. */
static int
found_cmp(const void *x, const void *y)
{
	const struct found *a = x, *b = y;
	bool fa = afmt_kind_is_failure(a->f.kind);
	bool fb = afmt_kind_is_failure(b->f.kind);

	if (fa != fb)
		return fa ? -1 : 1;
	if (fa) {
		if (a->fileidx != b->fileidx)
			return a->fileidx < b->fileidx ? -1 : 1;
		if (a->f.line != b->f.line)
			return a->f.line < b->f.line ? -1 : 1;
	} else if (a->f.seq != b->f.seq)
		return a->f.seq < b->f.seq ? -1 : 1;
	return a->n < b->n ? -1 : a->n > b->n;
}

static void
json_str(FILE *o, const char *s)
{
	char buf[1024];

	if (json_quote(s ? s : "", buf, sizeof(buf)) == -1)
		fputs("\"\"", o);
	else
		fputs(buf, o);
}

static void
print_seq(FILE *o, const struct afmt_finding *f)
{
	if (f->seq == 0)
		return;
	if (f->seq_end > f->seq)
		fprintf(o, " seq=%llu..%llu", (unsigned long long)f->seq,
		    (unsigned long long)f->seq_end);
	else
		fprintf(o, " seq=%llu", (unsigned long long)f->seq);
}

static int
parse_anchor(const char *s, uint64_t *seq, unsigned char head[AFMT_HASH_LEN])
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end != ':' || v == 0 ||
	    hex_decode(end + 1, head, AFMT_HASH_LEN) == -1)
		return -1;
	*seq = v;
	return 0;
}

struct anchor_arg {
	uint64_t	 seq;
	unsigned char	 head[AFMT_HASH_LEN];
};

/* --anchor SEQ:HEAD, added to the list: EX_VALID, or EX_USAGE (said
 * why), or EX_UNVERIFIABLE (out of memory). */
static int
add_anchor(struct anchor_arg **anchors, size_t *n, const char *arg)
{
	struct anchor_arg *a = realloc(*anchors, (*n + 1) * sizeof(**anchors));

	if (a == NULL)
		return EX_UNVERIFIABLE;
	*anchors = a;
	if (parse_anchor(arg, &a[*n].seq, a[*n].head) == -1) {
		fprintf(stderr, "cmgate-audit: --anchor: expected SEQ:HEAD "
		    "(HEAD = 64 hex digits)\n");
		return EX_USAGE;
	}
	(*n)++;
	return EX_VALID;
}

/*
 * The verdict on a verified log, for verify and report alike: no
 * record proves nothing (2); a failure (or, when strict, an unsealed
 * tail) is 1; an anchor the files do not reach leaves it unverifiable.
 */
static int
verdict_of(const struct afmt_summary *sum, bool strict)
{
	if (sum->records == 0)
		return EX_UNVERIFIABLE;
	if (sum->failures > 0 || (strict && sum->unsealed > 0))
		return EX_INTEGRITY;
	if (sum->anchors_unchecked > 0)
		return EX_UNVERIFIABLE;
	return EX_VALID;
}

/*
 * What verify and report share: K0, the anchors given, the logs in
 * chain order and, once they are verified, the summary.
 */
struct vrun {
	unsigned char		 k0[AFMT_KEY_LEN];
	bool			 k0_set;
	struct anchor_arg	*anchors;
	size_t			 nanchors;
	struct logfile		*files;
	int			 nfiles;
	struct afmt_summary	 sum;
};

/* --anchor SEQ:HEAD into vr: -1 to go on, or the exit code. */
static int
vrun_anchor(struct vrun *vr, const char *arg)
{
	int rc;

	rc = add_anchor(&vr->anchors, &vr->nanchors, arg);
	return rc == EX_VALID ? -1 : rc;
}

/* Read K0 and open the logs names[0..n-1] in chain order: EX_VALID, or
 * the exit code (said why). */
static int
vrun_open(struct vrun *vr, const char *keyfile, int n, char **names)
{
	if (read_k0(keyfile, vr->k0) == -1)
		return EX_UNVERIFIABLE;
	vr->k0_set = true;
	if (open_logs(n, names, &vr->files, &vr->nfiles) == -1)
		return EX_UNVERIFIABLE;
	if (vr->nfiles == 0) {
		fprintf(stderr, "cmgate-audit: no log file given\n");
		return EX_USAGE;
	}
	return EX_VALID;
}

/* Check the anchors and feed the logs to v, then take the summary.
 * -1 on a read error. */
static int
vrun_verify(struct vrun *vr, struct afmt_vfy *v)
{
	size_t i;

	for (i = 0; i < vr->nanchors; i++)
		afmt_vfy_anchor(v, vr->anchors[i].seq, vr->anchors[i].head);
	if (verify_files(v, vr->files, (size_t)vr->nfiles) == -1)
		return -1;
	afmt_vfy_finish(v);
	afmt_vfy_summary(v, &vr->sum);
	return 0;
}

static void
vrun_close(struct vrun *vr)
{
	int i;

	if (vr->k0_set)
		OPENSSL_cleanse(vr->k0, sizeof(vr->k0));
	for (i = 0; i < vr->nfiles; i++)
		logfile_close(&vr->files[i]);
	free(vr->files);
	free(vr->anchors);
}

struct verify_opts {
	const char	*keyfile;
	bool		 strict, json;
};

/* verify's options, anchors into vr: -1 to go on, or the exit code. */
static int
verify_options(int argc, char **argv, struct verify_opts *o,
    struct vrun *vr)
{
	static const struct option opts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "strict", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "anchor", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o->keyfile = optarg;
			break;
		case 's':
			o->strict = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'a':
			if ((rc = vrun_anchor(vr, optarg)) != -1)
				return rc;
			break;
		case 'h':
			usage(stdout);
			return EX_VALID;
		default:
			return EX_USAGE;
		}
	}
	if (o->keyfile == NULL || argc - optind < 1) {
		fprintf(stderr, "usage: cmgate-audit verify --key-file K0 "
		    "[--strict] [--json] [--anchor SEQ:HEAD]... LOG...\n");
		return EX_USAGE;
	}
	return -1;
}

/* verify --json: the findings and the summary as one JSON object. */
static void
verify_print_json(const struct findings *fs, const struct vrun *vr,
    const char *result)
{
	const struct afmt_summary *sum = &vr->sum;
	char hhex[2 * AFMT_HASH_LEN + 1];
	size_t i;

	hex_encode(sum->head, AFMT_HASH_LEN, hhex);
	printf("{\"result\":\"%s\",\"findings\":[", result);
	for (i = 0; i < fs->n; i++) {
		const struct afmt_finding *f = &fs->v[i].f;
		printf("%s{\"finding\":\"%s\",\"failure\":%s,"
		    "\"seq\":%llu,\"seq_end\":%llu,\"file\":",
		    i ? "," : "", afmt_kind_name(f->kind),
		    afmt_kind_is_failure(f->kind) ? "true" : "false",
		    (unsigned long long)f->seq,
		    (unsigned long long)f->seq_end);
		json_str(stdout, f->file);
		printf(",\"line\":%llu,\"offset\":%llu,",
		    (unsigned long long)f->line,
		    (unsigned long long)f->offset);
		if (f->id[0])
			printf("\"request_id\":\"%s\",", f->id);
		printf("\"detail\":");
		json_str(stdout, f->detail);
		printf("}");
	}
	printf("],\"summary\":{\"log\":\"%s\",\"files\":%d,"
	    "\"lines\":%llu,\"records\":%llu,\"first_seq\":%llu,"
	    "\"last_seq\":%llu,\"first_ts\":\"%s\",\"last_ts\":\"%s\","
	    "\"from_genesis\":%s,\"seals\":%llu,\"last_seal_seq\":%llu,"
	    "\"epoch\":%llu,\"unsealed\":%llu,\"head\":\"%s\","
	    "\"failures\":%llu,\"anchors_unchecked\":%llu}}\n",
	    sum->log_id, vr->nfiles, (unsigned long long)sum->lines,
	    (unsigned long long)sum->records,
	    (unsigned long long)sum->first_seq,
	    (unsigned long long)sum->last_seq, sum->first_ts,
	    sum->last_ts, sum->chain_from_start ? "true" : "false",
	    (unsigned long long)sum->seals,
	    (unsigned long long)sum->last_seal_seq,
	    (unsigned long long)sum->epoch,
	    (unsigned long long)sum->unsealed, hhex,
	    (unsigned long long)sum->failures,
	    (unsigned long long)sum->anchors_unchecked);
}

/* verify's text: one line per finding, then the summary lines. */
static void
verify_print_text(const struct findings *fs, const struct vrun *vr,
    const struct verify_opts *o, int rc)
{
	const struct afmt_summary *sum = &vr->sum;
	char hhex[2 * AFMT_HASH_LEN + 1];
	size_t i;

	hex_encode(sum->head, AFMT_HASH_LEN, hhex);
	for (i = 0; i < fs->n; i++) {
		const struct afmt_finding *f = &fs->v[i].f;
		printf("%s", afmt_kind_name(f->kind));
		print_seq(stdout, f);
		if (f->id[0])
			printf(" request_id=%s", f->id);
		if (f->line)
			printf(" file=%s line=%llu offset=%llu", f->file,
			    (unsigned long long)f->line,
			    (unsigned long long)f->offset);
		printf(": %s\n", f->detail);
	}
	if (sum->records == 0 && sum->lines > 0) {
		printf("FAIL: no record verifies under %s: wrong key, or not a "
		    "cmgate audit log\n", o->keyfile);
		return;
	}
	if (sum->records == 0) {
		printf("UNVERIFIABLE: no record in the file(s) given: an empty "
		    "log proves nothing\n");
		return;
	}
	printf("log %s: %llu record(s) verified in %d file(s)", sum->log_id,
	    (unsigned long long)sum->records, vr->nfiles);
	printf(", seq %llu..%llu, %s .. %s\n",
	    (unsigned long long)sum->first_seq,
	    (unsigned long long)sum->last_seq, sum->first_ts, sum->last_ts);
	if (!sum->chain_from_start)
		printf("the chain begins at seq %llu (earlier files not given)\n",
		    (unsigned long long)sum->first_seq);
	if (sum->last_seal_seq)
		printf("sealed through seq %llu at %s (%llu seal(s)); ",
		    (unsigned long long)sum->last_seal_seq, sum->last_seal_ts,
		    (unsigned long long)sum->seals);
	else
		printf("no seal; ");
	if (sum->unsealed)
		printf("unsealed tail: %llu record(s) since %s%s\n",
		    (unsigned long long)sum->unsealed, sum->unsealed_from_ts,
		    o->strict ? " (--strict: a failure)" : "");
	else
		printf("no unsealed tail\n");
	printf("head %llu:%s\n", (unsigned long long)sum->last_seq, hhex);
	if (vr->nanchors)
		printf("anchors: %zu given, %llu not covered by these files\n",
		    vr->nanchors, (unsigned long long)sum->anchors_unchecked);
	if (rc == EX_VALID)
		printf("PASS\n");
	else if (rc == EX_INTEGRITY)
		printf("FAIL: %llu integrity finding(s)%s\n",
		    (unsigned long long)sum->failures,
		    o->strict && sum->unsealed && !sum->failures ?
		    " (unsealed tail)" : "");
	else
		printf("UNVERIFIABLE: an anchor lies outside these files\n");
}

static int
cmd_verify(int argc, char **argv)
{
	struct verify_opts o = { 0 };
	struct findings fs = { 0 };
	struct vrun vr = { 0 };
	struct afmt_vfy *v = NULL;
	int rc;

	if ((rc = verify_options(argc, argv, &o, &vr)) != -1 ||
	    (rc = vrun_open(&vr, o.keyfile, argc - optind,
	    argv + optind)) != EX_VALID)
		goto out;
	rc = EX_UNVERIFIABLE;
	fs.files = vr.files;
	fs.nfiles = (size_t)vr.nfiles;
	if ((v = afmt_vfy_new(vr.k0, 0, collect, &fs)) == NULL) {
		fprintf(stderr, "cmgate-audit: OpenSSL HMAC unavailable\n");
		goto out;
	}
	if (vrun_verify(&vr, v) == -1)
		goto out;
	if (fs.n > 1)
		qsort(fs.v, fs.n, sizeof(*fs.v), found_cmp);
	rc = verdict_of(&vr.sum, o.strict);
	if (o.json)
		verify_print_json(&fs, &vr, rc == EX_VALID ? "pass" :
		    rc == EX_INTEGRITY ? "fail" : "unverifiable");
	else
		verify_print_text(&fs, &vr, &o, rc);
out:
	afmt_vfy_free(v);
	vrun_close(&vr);
	free(fs.v);
	return rc;
}

/* ------------------------------------------------------------------ */
/* report */

/* An ISO 8601 UTC prefix: digits and -T:.Z only, at most 24. */
static bool
time_prefix_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 4 && n <= 24 && strspn(s, "0123456789-T:.Z") == n;
}

/*
 * The fingerprint of K0 on the report: the first 16 hex digits of
 * SHA-256(HMAC(K0, "cmgate-audit key fingerprint")).  The HMAC under a
 * label of its own keeps it apart from every key the log derives, and
 * reveals nothing of K0.
 */
static int
key_fingerprint(const unsigned char k0[AFMT_KEY_LEN], char out[17])
{
	static const char label[] = "cmgate-audit key fingerprint";
	unsigned char m[AFMT_HASH_LEN], h[AFMT_HASH_LEN];
	char hex[2 * AFMT_HASH_LEN + 1];

	if (afmt_hmac(k0, AFMT_KEY_LEN, label, sizeof(label) - 1, NULL, 0,
	    m) == -1 || afmt_sha256(m, sizeof(m), h) == -1)
		return -1;
	OPENSSL_cleanse(m, sizeof(m));
	hex_encode(h, sizeof(h), hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
	return 0;
}

struct report_cli {
	const char	*keyfile, *out;
	bool		 json;
};

/* report's options (ro: the period; vr: anchors): -1 to go on, or the
 * exit code. */
static int
report_options(int argc, char **argv, struct report_cli *o,
    struct report_opts *ro, struct vrun *vr)
{
	static const struct option opts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "anchor", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o->keyfile = optarg;
			break;
		case 's':
		case 'u':
			if (!time_prefix_ok(optarg)) {
				fprintf(stderr, "cmgate-audit: --%s: expected an "
				    "ISO 8601 UTC time such as 2026-11-26 or "
				    "2026-11-26T19:00\n", c == 's' ? "since" :
				    "until");
				return EX_USAGE;
			}
			if (c == 's')
				ro->since = optarg;
			else
				ro->until = optarg;
			break;
		case 'a':
			if ((rc = vrun_anchor(vr, optarg)) != -1)
				return rc;
			break;
		case 'j':
			o->json = true;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'h':
			usage(stdout);
			return EX_VALID;
		default:
			return EX_USAGE;
		}
	}
	if (o->keyfile == NULL || argc - optind < 1) {
		fprintf(stderr, "usage: cmgate-audit report --key-file K0 "
		    "[--since TIME] [--until TIME] [--anchor SEQ:HEAD]... "
		    "[-o FILE] [--json] LOG...\n");
		return EX_USAGE;
	}
	return -1;
}

/* The finished report, HTML or JSON, to o->out or standard output. */
static int
report_write(struct report *rp, const struct report_cli *o)
{
	FILE *f = NULL;
	int rc;

	if (o->out && (f = fopen(o->out, "w")) == NULL) {
		fprintf(stderr, "cmgate-audit: %s: %s\n", o->out,
		    strerror(errno));
		return -1;
	}
	rc = o->json ? report_json(rp, f ? f : stdout) :
	    report_html(rp, f ? f : stdout);
	if ((f ? fclose(f) : fflush(stdout)) == EOF)
		rc = -1;
	if (rc == -1)
		fprintf(stderr, "cmgate-audit: %s: write error\n",
		    o->out ? o->out : "standard output");
	return rc;
}

static int
cmd_report(int argc, char **argv)
{
	struct report_cli o = { 0 };
	struct report_opts ro = { 0 };
	struct vrun vr = { 0 };
	struct afmt_vfy *v = NULL;
	struct report *rp = NULL;
	const char **names = NULL;
	char fpr[17], gen[40];
	int i, rc, verdict;

	if ((rc = report_options(argc, argv, &o, &ro, &vr)) != -1 ||
	    (rc = vrun_open(&vr, o.keyfile, argc - optind,
	    argv + optind)) != EX_VALID)
		goto out;
	rc = EX_UNVERIFIABLE;
	if (key_fingerprint(vr.k0, fpr) == -1) {
		fprintf(stderr, "cmgate-audit: OpenSSL HMAC unavailable\n");
		goto out;
	}
	if ((names = calloc((size_t)vr.nfiles, sizeof(*names))) == NULL)
		goto out;
	for (i = 0; i < vr.nfiles; i++)
		names[i] = vr.files[i].name;
	now_iso8601(gen, sizeof(gen));
	ro.key_fpr = fpr;
	ro.generated = gen;
	ro.files = names;
	ro.nfiles = (size_t)vr.nfiles;
	ro.nanchors = vr.nanchors;
	if ((rp = report_new(&ro)) == NULL ||
	    (v = afmt_vfy_new(vr.k0, 0, report_finding, rp)) == NULL) {
		fprintf(stderr, "cmgate-audit: out of memory\n");
		goto out;
	}
	afmt_vfy_on_record(v, report_record, rp);
	if (vrun_verify(&vr, v) == -1)
		goto out;
	verdict = verdict_of(&vr.sum, false);	/* verify's rules */
	report_finish(rp, &vr.sum, verdict);
	if (report_write(rp, &o) == -1)
		goto out;
	fprintf(stderr, "cmgate-audit: %s: %s (%llu record(s) verified, %llu "
	    "finding(s))\n", o.out ? o.out : "report", verdict == EX_VALID ?
	    "valid" : verdict == EX_INTEGRITY ? "INTEGRITY FAILURE" :
	    "UNVERIFIABLE", (unsigned long long)vr.sum.records,
	    (unsigned long long)vr.sum.failures);
	rc = verdict;
out:
	afmt_vfy_free(v);
	report_free(rp);
	vrun_close(&vr);
	free(names);
	return rc;
}

/* ------------------------------------------------------------------ */
/* show */

struct show_arg {
	const char	*rid, *since, *type, *caller, *name;
	size_t		 line;
	int		 rc;
	/* --client-id: `"client_id":"ID"` and the request ids of every
	 * record that holds it (sorted), so that a request's other
	 * records (the create's request record names no client yet) come
	 * along. */
	char		 cneedle[96];
	char		(*rids)[ID_BUF];
	size_t		 nrids, caprids;
};

static int
rid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* First pass of --client-id: the request ids of the records naming it. */
static int
show_collect(const char *p, size_t n, uint64_t off, void *arg)
{
	struct show_arg *a = arg;
	struct afmt_rec r;
	char buf[300];

	(void)off;
	if (afmt_parse(p, n, &r) == -1 ||
	    memmem(r.fields, r.flen, a->cneedle, strlen(a->cneedle)) == NULL ||
	    afmt_field_str(r.fields, r.flen, "request_id", buf,
	    sizeof(buf)) == -1 || strlen(buf) != 32)
		return 0;
	if (a->nrids == a->caprids) {
		size_t cap = a->caprids ? 2 * a->caprids : 64;
		void *v = realloc(a->rids, cap * sizeof(*a->rids));

		if (v == NULL) {
			fprintf(stderr, "cmgate-audit: out of memory\n");
			a->rc = EX_UNVERIFIABLE;
			return -1;
		}
		a->rids = v;
		a->caprids = cap;
	}
	memcpy(a->rids[a->nrids++], buf, 33);
	return 0;
}

static int
show_line(const char *p, size_t n, uint64_t off, void *arg)
{
	struct show_arg *a = arg;
	struct afmt_rec r;
	char buf[300];

	(void)off;
	a->line++;
	if (afmt_parse(p, n, &r) == -1) {
		fprintf(stderr, "cmgate-audit: %s line %zu: not a record "
		    "(skipped)\n", a->name, a->line);
		return 0;
	}
	if (a->type && strcmp(r.type, a->type) != 0)
		return 0;
	if (a->since && strcmp(r.ts, a->since) < 0)
		return 0;
	if (a->rid && (afmt_field_str(r.fields, r.flen, "request_id", buf,
	    sizeof(buf)) == -1 || strcmp(buf, a->rid) != 0))
		return 0;
	if (a->caller[0] && (afmt_field_raw(r.fields, r.flen, "caller", buf,
	    sizeof(buf)) == -1 || strcmp(buf, a->caller) != 0))
		return 0;
	if (a->cneedle[0] && memmem(r.fields, r.flen, a->cneedle,
	    strlen(a->cneedle)) == NULL && (afmt_field_str(r.fields, r.flen,
	    "request_id", buf, sizeof(buf)) == -1 || bsearch(buf, a->rids,
	    a->nrids, sizeof(*a->rids), rid_cmp) == NULL))
		return 0;
	if (fwrite(p, 1, n, stdout) != n) {
		a->rc = EX_UNVERIFIABLE;
		return -1;
	}
	return 0;
}

static int
cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "request-id", required_argument, NULL, 'r' },
		{ "caller", required_argument, NULL, 'c' },
		{ "since", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "client-id", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rid = NULL, *since = NULL, *type = NULL, *cid = NULL;
	char caller[300] = "";
	struct show_arg sa = { 0 };
	struct logfile *files = NULL;
	int c, nfiles, i, rc = EX_VALID;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rid = optarg;
			break;
		case 'c':
			/* Compare the raw JSON value: names may be escaped. */
			if (json_quote(optarg, caller, sizeof(caller)) == -1) {
				fprintf(stderr, "cmgate-audit: --caller: too "
				    "long\n");
				return EX_USAGE;
			}
			break;
		case 's':
			since = optarg;
			break;
		case 't':
			type = optarg;
			break;
		case 'i':
			/* An id as the gateway records it: nothing to escape. */
			if (strlen(optarg) < 1 || strlen(optarg) > 64 ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
			    strlen(optarg)) {
				fprintf(stderr, "cmgate-audit: --client-id: "
				    "1..64 of A-Z a-z 0-9 _ -\n");
				return EX_USAGE;
			}
			cid = optarg;
			break;
		case 'h':
			usage(stdout);
			return EX_VALID;
		default:
			return EX_USAGE;
		}
	}
	nfiles = argc - optind;
	if (nfiles < 1) {
		fprintf(stderr, "usage: cmgate-audit show [--request-id ID] "
		    "[--caller NAME] [--client-id ID] [--since TIME] "
		    "[--type TYPE] LOG...\n");
		return EX_USAGE;
	}
	if (open_logs(nfiles, argv + optind, &files, &nfiles) == -1)
		return EX_UNVERIFIABLE;
	if (cid != NULL) {
		snprintf(sa.cneedle, sizeof(sa.cneedle), "\"client_id\":\"%s\"",
		    cid);
		for (i = 0; i < nfiles && sa.rc == EX_VALID; i++)
			if (logfile_lines(&files[i], show_collect, &sa) == -1)
				sa.rc = EX_UNVERIFIABLE;
		qsort(sa.rids, sa.nrids, sizeof(*sa.rids), rid_cmp);
	}
	sa.rid = rid;
	sa.since = since;
	sa.type = type;
	sa.caller = caller;
	for (i = 0; i < nfiles && sa.rc == EX_VALID; i++) {
		sa.name = files[i].name;
		sa.line = 0;
		if (logfile_lines(&files[i], show_line, &sa) == -1)
			sa.rc = EX_UNVERIFIABLE;
	}
	rc = sa.rc;
	free(sa.rids);
	for (i = 0; i < nfiles; i++)
		logfile_close(&files[i]);
	free(files);
	if (fflush(stdout) == EOF)
		rc = EX_UNVERIFIABLE;
	return rc;
}

/* ------------------------------------------------------------------ */
/* digest */

static int
cmd_digest(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "log-id", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyfile = NULL, *logid = NULL, *s;
	unsigned char k0[AFMT_KEY_LEN], bk[AFMT_KEY_LEN], mac[AFMT_HASH_LEN];
	char hex[2 * AFMT_HASH_LEN + 1], *body = NULL, err[300];
	struct json_object *o = NULL;
	size_t len = 0, slen = 0;
	int c, rc = EX_UNVERIFIABLE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keyfile = optarg;
			break;
		case 'l':
			logid = optarg;
			break;
		case 'h':
			usage(stdout);
			return EX_VALID;
		default:
			return EX_USAGE;
		}
	}
	if (keyfile == NULL || logid == NULL || argc - optind != 1 ||
	    strlen(logid) != AFMT_LOGID_HEX) {
		fprintf(stderr, "usage: cmgate-audit digest --key-file K0 "
		    "--log-id ID(32 hex) FILE\n");
		return EX_USAGE;
	}
	if (read_k0(keyfile, k0) == -1)
		return EX_UNVERIFIABLE;
	if (read_file(argv[optind], 16 * 1024 * 1024, &body, &len, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "cmgate-audit: %s\n", err);
		goto out;
	}
	if ((o = json_tokener_parse(body)) == NULL) {
		fprintf(stderr, "cmgate-audit: %s: not JSON\n", argv[optind]);
		goto out;
	}
	/* The gateway digests the body as serialized for upstream. */
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &slen);
	if (afmt_body_key(k0, logid, bk) == -1 ||
	    afmt_hmac(bk, sizeof(bk), s, slen, NULL, 0, mac) == -1)
		goto out;
	hex_encode(mac, sizeof(mac), hex);
	printf("%s\n", hex);
	rc = EX_VALID;
out:
	OPENSSL_cleanse(k0, sizeof(k0));
	OPENSSL_cleanse(bk, sizeof(bk));
	json_object_put(o);
	if (body)
		secret_free(body, len);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (cmd == NULL) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return EX_VALID;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("cmgate-audit (format v%d)\n", AFMT_VERSION);
		return EX_VALID;
	}
	if (afmt_init() == -1) {
		fprintf(stderr, "cmgate-audit: OpenSSL HMAC-SHA256 "
		    "unavailable\n");
		return EX_UNVERIFIABLE;
	}
	if (strcmp(cmd, "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(cmd, "show") == 0)
		return cmd_show(argc - 1, argv + 1);
	if (strcmp(cmd, "digest") == 0)
		return cmd_digest(argc - 1, argv + 1);
	if (strcmp(cmd, "report") == 0)
		return cmd_report(argc - 1, argv + 1);
	fprintf(stderr, "cmgate-audit: unknown command '%s'\n", cmd);
	usage(stderr);
	return EX_USAGE;
}
