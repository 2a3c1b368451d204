/*
 * audit_recover.c: opening a log that exists, after a stop or a crash.
 *
 * The key state names the last seal (seq and head).  Everything before
 * it was verified when it was written; what follows is checked here
 * with the live key, through the verifier cmgate-audit uses.  A torn
 * end (the last batch cut short by a crash) is copied aside to
 * <path>.broken-<time>, cut, and recorded in a "recover" record;
 * anything else (a bad record followed by good ones, more than one
 * whole bad record, a missing seal) is tampering or the wrong state,
 * and the gateway refuses to start.  A crash inside a rotation (the
 * live file renamed away, its successor not yet written) is finished.
 * Requests left without an outcome get "abandoned" outcome records.
 */
#include "audit_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *
audit_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The first failure the tail check found, said for the error. */
struct audit_scan {
	const char	*first_fail;
	char		 msg[400];
};

static void
audit_scan_finding(const struct afmt_finding *f, void *arg)
{
	struct audit_scan *s = arg;

	if (!afmt_kind_is_failure(f->kind) || s->first_fail)
		return;
	s->first_fail = afmt_kind_name(f->kind);
	snprintf(s->msg, sizeof(s->msg), "%s seq=%llu line %llu (offset %llu): "
	    "%s", afmt_kind_name(f->kind), (unsigned long long)f->seq,
	    (unsigned long long)f->line, (unsigned long long)f->offset,
	    f->detail);
}

/* Track open requests over lines [0, end) of a file (parse only: the
 * part before the last seal was verified when it was written). */
static void
audit_scan_open(struct afmt_idset *set, const char *map, size_t end)
{
	struct afmt_lines it;
	struct afmt_rec r;
	const char *line;
	size_t n, off;

	afmt_lines_init(&it, map, end);
	while (afmt_lines_next(&it, &line, &n, &off))
		if (afmt_parse(line, n, &r) == 0)
			afmt_idset_track(set, r.type, r.fields, r.flen, r.seq);
}

/* Copy the torn bytes aside before cutting them. */
static int
audit_save_broken(struct audit *a, const char *bytes, size_t n, char *name,
    size_t namelen)
{
	char ts[32];
	struct tm tm;
	time_t now = time(NULL);
	int fd = -1, i;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	for (i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(name, namelen, "%s.broken-%s", a->path, ts);
		else
			snprintf(name, namelen, "%s.broken-%s-%d", a->path, ts,
			    i);
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1)
		return -1;
	if (audit_write_all(fd, bytes, n) == -1 || fsync(fd) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return audit_fsync_dir(a->dir);
}

struct audit_recovery {
	bool		 torn;
	uint64_t	 cut_offset, cut_bytes, torn_seq;
	unsigned char	 cut_sha[AFMT_HASH_LEN];
	char		 broken[PATH_MAX];
};

/*
 * Where the records after the state's last seal begin: after that seal
 * in this file, or at 0 when the seal closes the previous file (a
 * rotation) and this file's first record chains to it.  -1 when the
 * file holds neither: truncated or replaced.
 */
static int
audit_find_tail(struct audit *a, const char *map, size_t size, size_t *tail,
    char *err, size_t errlen)
{
	struct afmt_lines it;
	struct afmt_rec r;
	unsigned char h[AFMT_HASH_LEN];
	const char *line;
	size_t n, off;

	afmt_lines_init(&it, map, size);
	while (afmt_lines_next(&it, &line, &n, &off))
		if (afmt_parse(line, n, &r) == 0 && r.seq == a->seal_seq &&
		    strcmp(r.type, "seal") == 0 &&
		    afmt_sha256(line, n, h) == 0 &&
		    memcmp(h, a->seal_head, AFMT_HASH_LEN) == 0) {
			*tail = off + n;
			return 0;
		}
	afmt_lines_init(&it, map, size);
	if (!afmt_lines_next(&it, &line, &n, &off) ||
	    afmt_parse(line, n, &r) == -1 || r.seq != a->seal_seq + 1 ||
	    memcmp(r.prev, a->seal_head, AFMT_HASH_LEN) != 0) {
		snprintf(err, errlen, "%s does not hold the last sealed "
		    "record (seq %llu) named by the key state %s: the "
		    "log was truncated or replaced; refusing to start "
		    "(check it with cmgate-audit verify)", a->path,
		    (unsigned long long)a->seal_seq, a->state_path);
		return -1;
	}
	*tail = 0;
	return 0;
}

/*
 * Verify the records from offset tail on with the live key, through
 * the verifier the audit tool uses, in repair mode: a bad run at the
 * very end is left in sum (torn) for the caller to judge; any other
 * finding refuses.
 */
static int
audit_verify_tail(struct audit *a, const char *map, size_t size, size_t tail,
    struct afmt_summary *sum, char *err, size_t errlen)
{
	struct audit_scan scan = { 0 };
	struct afmt_vfy *v;
	struct afmt_lines it;
	const char *line;
	size_t n, off;

	if ((v = afmt_vfy_new(a->key.k, a->key.epoch, audit_scan_finding,
	    &scan)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	afmt_vfy_repair_mode(v, true);
	afmt_vfy_file(v, a->path);
	afmt_vfy_expect(v, a->seal_seq + 1, a->seal_head, a->key.epoch,
	    a->log_id);
	afmt_lines_init(&it, map, size);
	it.off = tail;
	while (afmt_lines_next(&it, &line, &n, &off))
		afmt_vfy_line(v, line, n, off);
	afmt_vfy_finish(v);
	afmt_vfy_summary(v, sum);
	afmt_vfy_free(v);
	if (scan.first_fail) {
		snprintf(err, errlen, "%s: the records after the last seal "
		    "(seq %llu) do not verify: %s.  A bad record followed by "
		    "valid ones is tampering or corruption, not a torn write: "
		    "refusing to start (inspect with cmgate-audit verify)",
		    a->path, (unsigned long long)a->seal_seq, scan.msg);
		return -1;
	}
	return 0;
}

/*
 * A torn tail from offset end: judge it and save a copy aside (rec).
 * A crash tears at most the last batch; more than one whole record
 * that parses but fails its MAC is not a crash (or the state holds the
 * wrong key).
 */
static int
audit_keep_torn(struct audit *a, const char *map, size_t size, size_t end,
    const struct afmt_summary *sum, struct audit_recovery *rec, char *err,
    size_t errlen)
{
	struct afmt_lines it;
	struct afmt_rec r;
	const char *line;
	size_t n, off, complete = 0;

	afmt_lines_init(&it, map, size);
	it.off = end;
	while (afmt_lines_next(&it, &line, &n, &off))
		if (afmt_parse(line, n, &r) == 0)
			complete++;
	if (complete > 1) {
		snprintf(err, errlen, "%s: %zu complete records from "
		    "offset %zu fail verification: this is not a torn "
		    "write (tampering, or a key state that does not "
		    "belong to this log); refusing to start",
		    a->path, complete, end);
		return -1;
	}
	rec->torn = true;
	rec->cut_offset = end;
	rec->cut_bytes = size - end;
	rec->torn_seq = sum->torn_seq;
	if (afmt_sha256(map + end, size - end, rec->cut_sha) == -1 ||
	    audit_save_broken(a, map + end, size - end, rec->broken,
	    sizeof(rec->broken)) == -1) {
		snprintf(err, errlen, "%s: cannot save the torn tail "
		    "aside: %s", a->path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Take the chain state (next_seq, head, epoch) from what verified. */
static int
audit_adopt_chain(struct audit *a, const struct afmt_summary *sum, char *err,
    size_t errlen)
{
	a->next_seq = sum->last_seq + 1;
	memcpy(a->head, sum->head, AFMT_HASH_LEN);
	a->epoch_records = sum->epoch_records;
	/* With no record after it, the last record is the state's seal. */
	a->last_is_seal = sum->records == 0 || sum->last_is_seal;
	if (sum->epoch <= a->key.epoch)
		return 0;
	/* A seal made it to disk but the state did not follow: finish
	 * that step now. */
	if (!sum->last_is_seal) {
		snprintf(err, errlen, "%s: records follow a seal the "
		    "key state does not know of; refusing to start",
		    a->path);
		return -1;
	}
	if (afmt_key_seek(&a->key, a->log_id, sum->epoch,
	    sum->epoch - a->key.epoch) == -1) {
		snprintf(err, errlen, "key evolution failed");
		return -1;
	}
	a->seal_seq = sum->last_seq;
	memcpy(a->seal_head, sum->head, AFMT_HASH_LEN);
	if (audit_state_save(a) == -1) {
		snprintf(err, errlen, "cannot persist the key state %s: "
		    "%s", a->state_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Cut the torn tail rec describes (saved aside already). */
static int
audit_cut_tail(struct audit *a, const struct audit_recovery *rec, char *err,
    size_t errlen)
{
	if (ftruncate(a->fd, (off_t)rec->cut_offset) == -1 ||
	    fdatasync(a->fd) == -1) {
		snprintf(err, errlen, "%s: cannot cut the torn tail: %s",
		    a->path, strerror(errno));
		return -1;
	}
	log_warn("audit: %s: cut a torn tail of %llu bytes at offset "
	    "%llu (seq %llu on); saved as %s", a->path,
	    (unsigned long long)rec->cut_bytes,
	    (unsigned long long)rec->cut_offset,
	    (unsigned long long)rec->torn_seq, rec->broken);
	return 0;
}

/*
 * Check the live file from the last seal the state knows, repair a
 * torn tail, and set the chain state (next_seq, head, epoch) from what
 * verifies.  Refuses when the tail shows anything but a torn end.
 */
static int
audit_recover(struct audit *a, struct audit_recovery *rec, char *err,
    size_t errlen)
{
	struct afmt_summary sum;
	struct stat st;
	char *map = NULL;
	size_t size, tail = 0, end;
	int rc = -1;

	if (fstat(a->fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
		return -1;
	}
	size = (size_t)st.st_size;
	if (size > 0 && (map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, a->fd,
	    0)) == MAP_FAILED) {
		map = NULL;
		snprintf(err, errlen, "%s: mmap: %s", a->path, strerror(errno));
		return -1;
	}
	if (audit_find_tail(a, map, size, &tail, err, errlen) == 0 &&
	    audit_verify_tail(a, map, size, tail, &sum, err, errlen) == 0) {
		end = sum.torn ? (size_t)sum.torn_offset : size;
		if (!sum.torn || audit_keep_torn(a, map, size, end, &sum, rec,
		    err, errlen) == 0) {
			audit_scan_open(&a->open, map, end);
			rc = audit_adopt_chain(a, &sum, err, errlen);
		}
	}
	if (map)
		munmap(map, size);
	if (rc == 0 && rec->torn)
		rc = audit_cut_tail(a, rec, err, errlen);
	if (rc == 0)
		a->size = rec->torn ? rec->cut_offset : size;
	return rc;
}

/* A crash between renaming the live file away and writing the new
 * one's start record: the rotated file must end with the state's
 * seal, and its open requests carry over. */
static int
audit_recover_rotation(struct audit *a, char *err, size_t errlen)
{
	char name[PATH_MAX];
	struct afmt_rec r;
	unsigned char h[AFMT_HASH_LEN];
	struct afmt_lines it;
	struct stat st;
	const char *line;
	char *map = NULL;
	size_t size = 0, n, off, lastoff = 0, lastlen = 0;
	int fd, rc = -1;

	audit_rotated_name(a, a->seal_seq, name, sizeof(name));
	if ((fd = open(name, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s is missing or empty, but the key state "
		    "%s says seq %llu was sealed and %s does not exist: "
		    "restore the log, or move the state away to begin a new "
		    "log", a->path, a->state_path,
		    (unsigned long long)a->seal_seq, name);
		return -1;
	}
	if (fstat(fd, &st) == -1 || st.st_size == 0 ||
	    (map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
	    0)) == MAP_FAILED) {
		map = NULL;
		snprintf(err, errlen, "%s: cannot read", name);
		goto fail;
	}
	size = (size_t)st.st_size;
	afmt_lines_init(&it, map, size);
	while (afmt_lines_next(&it, &line, &n, &off)) {
		lastoff = off;
		lastlen = n;
	}
	if (afmt_parse(map + lastoff, lastlen, &r) == -1 ||
	    r.seq != a->seal_seq || afmt_sha256(map + lastoff, lastlen, h) == -1 ||
	    memcmp(h, a->seal_head, AFMT_HASH_LEN) != 0) {
		snprintf(err, errlen, "%s does not end with the seal (seq %llu) "
		    "the key state names; refusing to start", name,
		    (unsigned long long)a->seal_seq);
		goto fail;
	}
	audit_scan_open(&a->open, map, size);
	a->next_seq = a->seal_seq + 1;
	memcpy(a->head, a->seal_head, AFMT_HASH_LEN);
	a->epoch_records = 0;
	a->last_is_seal = true;
	a->size = 0;
	log_warn("audit: finishing an interrupted rotation after %s", name);
	rc = 0;
fail:
	if (map)
		munmap(map, size);
	close(fd);
	return rc;
}

/* Outcome records of class "abandoned" for requests a crash cut off. */
static int
audit_add_abandoned(struct audit *a)
{
	const struct afmt_open *o;
	size_t idx = 0, count = 0;
	char fields[512];
	int n;

	while ((o = afmt_idset_next(&a->open, &idx)) != NULL) {
		n = snprintf(fields, sizeof(fields), "\"request_id\":\"%s\","
		    "\"caller\":%s,\"upstream_status\":null,\"latency_ms\":null,"
		    "\"error_class\":\"abandoned\",\"response_digest\":null,"
		    "\"client_status\":null,\"request_seq\":%llu", o->id,
		    o->caller, (unsigned long long)o->seq);
		if (n < 0 || (size_t)n >= sizeof(fields) ||
		    audit_add(a, "outcome", fields, (size_t)n, NULL, NULL,
		    NULL) == -1)
			return -1;
		count++;
	}
	if (count)
		log_warn("audit: %zu request(s) had no outcome after the last "
		    "run; recorded as abandoned", count);
	afmt_idset_free(&a->open);
	return 0;
}

static int
audit_add_recover(struct audit *a, const struct audit_recovery *rec)
{
	char fields[PATH_MAX + 300], sha[2 * AFMT_HASH_LEN + 1];
	int n;

	hex_encode(rec->cut_sha, AFMT_HASH_LEN, sha);
	n = snprintf(fields, sizeof(fields), "\"reason\":\"torn_tail\","
	    "\"offset\":%llu,\"bytes\":%llu,\"sha256\":\"%s\",\"torn_seq\":%llu,"
	    "\"broken_file\":", (unsigned long long)rec->cut_offset,
	    (unsigned long long)rec->cut_bytes, sha,
	    (unsigned long long)rec->torn_seq);
	if (n < 0 || json_quote(audit_basename(rec->broken), fields + n,
	    sizeof(fields) - (size_t)n) == -1)
		return -1;
	return audit_add(a, "recover", fields, strlen(fields), NULL, NULL, NULL);
}

/* The live file after a stop or a crash. */
int
audit_resume(struct audit *a, char *err, size_t errlen)
{
	struct audit_recovery rec;

	memset(&rec, 0, sizeof(rec));
	if (audit_recover(a, &rec, err, errlen) == -1)
		return -1;
	if (audit_add_start(a, "restart", false) == -1 ||
	    (rec.torn && audit_add_recover(a, &rec) == -1) ||
	    audit_add_abandoned(a) == -1 || audit_flush(a) == -1) {
		snprintf(err, errlen, "%s: cannot write: %s", a->path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* No live file, but a state: a rotation the crash cut short. */
int
audit_resume_rotation(struct audit *a, char *err, size_t errlen)
{
	if (audit_recover_rotation(a, err, errlen) == -1)
		return -1;
	if (audit_add_start(a, "rotate", true) == -1 ||
	    audit_add_abandoned(a) == -1 || audit_flush(a) == -1) {
		snprintf(err, errlen, "%s: cannot write: %s", a->path,
		    strerror(errno));
		return -1;
	}
	return 0;
}
