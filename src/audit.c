/*
 * audit.c: the gateway side of the audit log.
 *
 * One writer thread owns the file, the key and the chain.  Loop
 * threads queue records (audit_submit); the writer takes everything
 * queued, assigns seq, chains and MACs each record into one buffer,
 * writes it with one write(2) and makes it durable with one
 * fdatasync(2) (group commit, no linger timer), then hands each record
 * back to the loop that submitted it (audit_port, over a port.h port:
 * a loop's records go out once per loop pass and come back in one
 * batch per round).  At every epoch end it writes a seal, evolves the
 * key and persists the key state.
 *
 * Fail closed: the first write or fdatasync error poisons the log for
 * good.  fdatasync is never retried on the same file: after a failed
 * flush the kernel may have dropped the dirty pages and a retry can
 * report success for data that is gone (the PostgreSQL lesson).
 *
 * Files: <path> (the live log), <path>.<last seq, 12 digits> (rotated
 * files), <path>.broken-<time> (torn tails cut at start), the state
 * file (default <path>.state, 0600).  See docs/audit.md.
 *
 * This file holds the writer: its batches, seals and rotation, the
 * ports the loops submit through, and opening and closing the log.
 * The rest of the log has a file each, sharing struct audit through
 * audit_int.h: the key state file (audit_keys.c), the seal exporter
 * (audit_seal.c), recovery at open (audit_recover.c) and the body
 * member of a request record (audit_body.c).
 */
#include "config.h"	/* PACKAGE_VERSION, from configure.ac */
#include "audit_int.h"
#include "audit_flood.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#define AUDIT_BATCH_CAP		(1024 * 1024)	/* bytes of one write */

/* A loop's side of the writer. */
struct audit_port {
	struct audit		*a;
	struct port		*port;
};

static const double audit_buckets[12] = {
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, INFINITY,
};

static const char *const audit_reserved_types[] = {
	"start", "seal", "recover", "stop", "carry", "reject_summary", NULL,
};

const double *
audit_stats_buckets(void)
{
	return audit_buckets;
}

/* ------------------------------------------------------------------ */
/* Small file helpers */

int
audit_fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
audit_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static char *
audit_dirname(const char *path)
{
	const char *s = strrchr(path, '/');

	if (s == NULL)
		return strdup(".");
	if (s == path)
		return strdup("/");
	return strndup(path, (size_t)(s - path));
}

void
audit_rotated_name(const struct audit *a, uint64_t last, char *out,
    size_t outlen)
{
	snprintf(out, outlen, "%s.%012llu", a->path, (unsigned long long)last);
}

/* ------------------------------------------------------------------ */
/* Statistics */

static void
audit_hist(uint64_t *le, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i;

	for (i = 0; i < 12; i++)
		if (s <= audit_buckets[i])
			le[i]++;
}

void
audit_get_stats(const struct audit *ca, struct audit_stats *out)
{
	struct audit *a = (struct audit *)ca;

	if (out == NULL)
		return;
	if (a == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&a->smu);
	*out = a->st;
	pthread_mutex_unlock(&a->smu);
	out->rejects_summarized = audit_flood_summarized(a->flood);
}

void
audit_io_counts(const struct audit *ca, uint64_t *writes, uint64_t *fsyncs)
{
	struct audit *a = (struct audit *)ca;

	pthread_mutex_lock(&a->smu);
	if (writes)
		*writes = a->io_writes;
	if (fsyncs)
		*fsyncs = a->io_fsyncs;
	pthread_mutex_unlock(&a->smu);
}

/* ------------------------------------------------------------------ */
/* Building and flushing a batch (writer thread, or audit_open) */

static int
audit_reserve(struct audit *a, size_t more)
{
	char *n;
	size_t cap;

	if (a->buflen + more <= a->bufcap)
		return 0;
	cap = a->bufcap ? a->bufcap : 64 * 1024;
	while (cap < a->buflen + more)
		cap *= 2;
	if ((n = realloc(a->buf, cap)) == NULL)
		return -1;
	a->buf = n;
	a->bufcap = cap;
	return 0;
}

size_t
audit_record_line(char *out, size_t cap, const char *log_id, uint64_t seq,
    struct afmt_key *key, const unsigned char *prev, const char *type,
    const char *fields, size_t flen, unsigned char *head, unsigned char *mac,
    char *ts)
{
	struct afmt_head h;
	char now[32];

	now_iso8601(now, sizeof(now));
	h.log_id = log_id;
	h.seq = seq;
	h.epoch = key->epoch;
	h.ts = now;
	h.type = type;
	if (ts != NULL)
		memcpy(ts, now, sizeof(now));
	return afmt_build(out, cap, &h, fields, flen, prev, key, head, mac);
}

/*
 * Append one record to the batch: it takes the next seq and chains
 * to the previous record.  head/mac/ts (may be NULL) describe it.
 */
int
audit_add(struct audit *a, const char *type, const char *fields, size_t flen,
    unsigned char *head_out, unsigned char *mac_out, char *ts_out)
{
	unsigned char head[AFMT_HASH_LEN];
	char ts[32];
	size_t n;

	if (audit_reserve(a, AFMT_OVERHEAD + 64 + flen) == -1)
		return -1;
	n = audit_record_line(a->buf + a->buflen, a->bufcap - a->buflen,
	    a->log_id, a->next_seq, &a->key, a->head, type, fields, flen, head,
	    mac_out, ts);
	if (n == 0)
		return -1;
	a->buflen += n;
	memcpy(a->head, head, AFMT_HASH_LEN);
	if (head_out)
		memcpy(head_out, head, AFMT_HASH_LEN);
	if (ts_out)
		memcpy(ts_out, ts, sizeof(ts));
	a->next_seq++;
	a->epoch_records++;
	a->run_records++;
	a->last_is_seal = false;
	return 0;
}

static void
audit_poison(struct audit *a, const char *what, int err)
{
	if (!atomic_exchange(&a->poisoned, true))
		log_error("audit: %s %s: %s; the audit log is poisoned: "
		    "nothing more is recorded or forwarded until a restart",
		    what, a->path, strerror(err));
}

/* Write the batch and make it durable; poison on any failure. */
int
audit_flush(struct audit *a)
{
	uint64_t t0, t1, t2;
	ssize_t w;
	size_t want = a->buflen, done = 0;
	bool inject = false;
	int err = 0;

	if (want == 0)
		return 0;
	if (atomic_load(&a->poisoned))
		return -1;
	if (a->inject_armed && a->fail_after >= 0 &&
	    a->submitted_done >= (uint64_t)a->fail_after)
		inject = true;

	t0 = now_mono_ns();
	if (inject && !a->fail_fsync) {
		/* As a full disk does: part of the batch lands, then
		 * ENOSPC.  The torn tail is for recovery to find. */
		want = a->buflen / 2;
	}
	while (done < want) {
		w = write(a->fd, a->buf + done, want - done);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w == 0 ? EIO : errno;
			break;
		}
		done += (size_t)w;
	}
	if (inject && !a->fail_fsync && err == 0)
		err = ENOSPC;
	t1 = now_mono_ns();
	pthread_mutex_lock(&a->smu);
	a->io_writes++;
	pthread_mutex_unlock(&a->smu);
	if (err != 0) {
		a->buflen = 0;
		audit_poison(a, "write to", err);
		return -1;
	}
	/* A short write that "succeeded" piecewise is still all here. */
	if (inject && a->fail_fsync)
		err = EIO;
	else if (fdatasync(a->fd) == -1)
		err = errno;
	t2 = now_mono_ns();
	pthread_mutex_lock(&a->smu);
	a->io_fsyncs++;
	if (err == 0) {
		a->st.batches++;
		a->st.bytes += a->buflen;
		a->st.write_ns_sum += t1 - t0;
		a->st.fsync_ns_sum += t2 - t1;
		audit_hist(a->st.write_le, t1 - t0);
		audit_hist(a->st.fsync_le, t2 - t1);
	}
	pthread_mutex_unlock(&a->smu);
	if (err != 0) {
		a->buflen = 0;
		audit_poison(a, "fdatasync of", err);
		return -1;
	}
	a->size += a->buflen;
	a->buflen = 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Seals, stop, rotation (writer thread) */

static int
audit_add_seal(struct audit *a, char *export_line, size_t exlen)
{
	char fields[64], ts[32], hh[2 * AFMT_HASH_LEN + 1];
	char mh[2 * AFMT_HASH_LEN + 1];
	unsigned char head[AFMT_HASH_LEN], mac[AFMT_HASH_LEN];
	uint64_t seq = a->next_seq, epoch = a->key.epoch;
	int n;

	n = snprintf(fields, sizeof(fields), "\"records\":%llu",
	    (unsigned long long)(a->epoch_records + 1));
	if (audit_add(a, "seal", fields, (size_t)n, head, mac, ts) == -1)
		return -1;
	hex_encode(head, AFMT_HASH_LEN, hh);
	hex_encode(mac, AFMT_HASH_LEN, mh);
	snprintf(export_line, exlen, "{\"log\":\"%s\",\"seq\":%llu,"
	    "\"epoch\":%llu,\"ts\":\"%s\",\"head\":\"%s\",\"mac\":\"%s\"}",
	    a->log_id, (unsigned long long)seq, (unsigned long long)epoch, ts,
	    hh, mh);
	a->last_is_seal = true;
	return 0;
}

/*
 * After a seal is durable: evolve the key (wiping the old one) and
 * persist the new state.  A state that cannot be persisted poisons the
 * log: a restart would otherwise come back with a key the log has
 * already moved past.
 */
static int
audit_after_seal(struct audit *a, const char *export_line)
{
	a->seal_seq = a->next_seq - 1;
	memcpy(a->seal_head, a->head, AFMT_HASH_LEN);
	a->epoch_records = 0;
	if (afmt_key_evolve(&a->key, a->log_id) == -1) {
		audit_poison(a, "key evolution for", EIO);
		return -1;
	}
	if (audit_state_save(a) == -1) {
		audit_poison(a, "persisting the key state of", errno ? errno : EIO);
		return -1;
	}
	audit_export_push(a, export_line);
	return 0;
}

/* Seal the current epoch now, in a batch of its own. */
static int
audit_seal_now(struct audit *a)
{
	char ex[512];

	if (audit_add_seal(a, ex, sizeof(ex)) == -1 || audit_flush(a) == -1)
		return -1;
	return audit_after_seal(a, ex);
}

/*
 * Up to AUDIT_OPEN_CHUNK entries of the open requests from *idx on, as
 * the member ,"open":[{"request_id":..,"caller":..,"seq":N},...].
 * Each entry takes at most 190 bytes, so a chunk stays well inside a
 * record.
 */
#define AUDIT_OPEN_CHUNK	256

static char *
audit_open_chunk(const struct afmt_idset *set, size_t *idx, size_t *lenp,
    bool *more)
{
	const struct afmt_open *o = NULL;
	size_t cap = 64 + AUDIT_OPEN_CHUNK * 200, n = 0;
	char *s, *p;

	if ((s = malloc(cap)) == NULL)
		return NULL;
	p = s;
	p += sprintf(p, ",\"open\":[");
	while (n < AUDIT_OPEN_CHUNK && (o = afmt_idset_next(set, idx)) != NULL) {
		p += sprintf(p, "%s{\"request_id\":\"%s\",\"caller\":%s,"
		    "\"seq\":%llu}", n ? "," : "", o->id, o->caller,
		    (unsigned long long)o->seq);
		n++;
	}
	p += sprintf(p, "]");
	*lenp = (size_t)(p - s);
	/* Look ahead without consuming: is anything left? */
	{
		size_t peek = *idx;
		*more = n == AUDIT_OPEN_CHUNK && afmt_idset_next(set, &peek) !=
		    NULL;
	}
	return s;
}

/*
 * A start record.  A rotation lists the requests in flight (so each
 * file tells on its own which requests have no outcome); more than one
 * chunk of them follow in "carry" records.
 */
int
audit_add_start(struct audit *a, const char *reason, bool with_open)
{
	char head_hex[2 * AFMT_HASH_LEN + 1], *fields, *list = NULL;
	const char *body = a->body == BODY_DIGEST ? "digest" :
	    a->body == BODY_REDACTED ? "redacted" : "full";
	size_t listlen = 0, cap, idx = 0;
	bool more = false;
	int n, rc;

	hex_encode(a->head, AFMT_HASH_LEN, head_hex);
	if (with_open && (list = audit_open_chunk(&a->open, &idx, &listlen,
	    &more)) == NULL)
		return -1;
	cap = 512 + listlen;
	if ((fields = malloc(cap)) == NULL) {
		free(list);
		return -1;
	}
	n = snprintf(fields, cap, "\"reason\":\"%s\",\"last_seq\":%llu,"
	    "\"last_head\":\"%s\",\"epoch_s\":%llu,\"body\":\"%s\","
	    "\"pid\":%ld,\"gateway\":\"%s\"%s", reason,
	    (unsigned long long)(a->next_seq - 1), head_hex,
	    (unsigned long long)(a->epoch_ns / 1000000000ull), body,
	    (long)getpid(), "cmgate/" PACKAGE_VERSION, list ? list : "");
	rc = n > 0 && (size_t)n < cap ?
	    audit_add(a, "start", fields, (size_t)n, NULL, NULL, NULL) : -1;
	free(fields);
	free(list);
	while (rc == 0 && more) {
		if ((list = audit_open_chunk(&a->open, &idx, &listlen,
		    &more)) == NULL)
			return -1;
		/* skip the leading comma of the member */
		rc = audit_add(a, "carry", list + 1, listlen - 1, NULL, NULL,
		    NULL);
		free(list);
	}
	return rc;
}

/*
 * Rotate: seal, rename the live file to <path>.<last seq>, create a new
 * one whose start record chains to the last record of the old one and
 * carries the requests still in flight.  Any failure poisons the log.
 */
static int
audit_rotate(struct audit *a)
{
	char name[PATH_MAX];
	int fd;

	if (!a->last_is_seal && audit_seal_now(a) == -1)
		return -1;
	audit_rotated_name(a, a->next_seq - 1, name, sizeof(name));
	if (renameat2(AT_FDCWD, a->path, AT_FDCWD, name,
	    RENAME_NOREPLACE) == -1) {
		if (errno != EINVAL || access(name, F_OK) == 0 ||
		    rename(a->path, name) == -1) {
			audit_poison(a, "rotation of", errno);
			return -1;
		}
	}
	if ((fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0640)) == -1) {
		audit_poison(a, "creating", errno);
		return -1;
	}
	close(a->fd);
	a->fd = fd;
	a->size = 0;
	if (audit_fsync_dir(a->dir) == -1) {
		audit_poison(a, "fsync of the folder of", errno);
		return -1;
	}
	if (audit_add_start(a, "rotate", true) == -1 || audit_flush(a) == -1) {
		if (!atomic_load(&a->poisoned))
			audit_poison(a, "start record of", EIO);
		return -1;
	}
	log_info("audit: rotated to %s at seq %llu", name,
	    (unsigned long long)a->seal_seq);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The writer thread */

/* Hand finished items back to their loops (a port that is gone drops
 * them). */
static void
audit_complete(struct audit *a, struct audit_item **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		a->links[i] = &items[i]->link;
	port_post(a->links, n);
}

static void
audit_fail_items(struct audit *a, struct audit_item **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		items[i]->ok = false;
		items[i]->seq = 0;
	}
	audit_complete(a, items, n);
}

static void
audit_writer_round(struct audit *a, struct audit_item **items, size_t n,
    bool stop, bool seal)
{
	char ex[512], stopf[96], sumf[AUDIT_FLOOD_FIELDS_MAX];
	size_t i, good = 0, slen, nsum = 0;
	int len;

	if (atomic_load(&a->poisoned)) {
		audit_fail_items(a, items, n);
		return;
	}
	a->buflen = 0;
	for (i = 0; i < n; i++) {
		struct audit_item *it = items[i];
		it->seq = a->next_seq;
		it->ok = audit_add(a, it->type, it->fields, it->flen, NULL,
		    NULL, NULL) == 0;
		if (!it->ok) {
			log_error("audit: a %s record could not be built; "
			    "refused", it->type);
			it->seq = 0;
			continue;
		}
		good++;
		afmt_idset_track(&a->open, it->type, it->fields, it->flen,
		    it->seq);
	}
	/* Refusals counted since the last summary: due after a second,
	 * and always before a seal or the stop record, so that they are
	 * in the epoch they happened in. */
	if ((slen = audit_flood_take(a->flood, stop || seal, now_mono_ns(),
	    sumf, sizeof(sumf))) > 0) {
		if (audit_add(a, "reject_summary", sumf, slen, NULL, NULL,
		    NULL) == 0) {
			nsum = 1;
		} else
			log_error("audit: a reject_summary record could not "
			    "be built");
	}
	if (stop) {
		len = snprintf(stopf, sizeof(stopf), "\"reason\":\"shutdown\","
		    "\"records\":%llu", (unsigned long long)(a->run_records + 1));
		(void)audit_add(a, "stop", stopf, (size_t)len, NULL, NULL, NULL);
	}
	if (seal && audit_add_seal(a, ex, sizeof(ex)) == -1)
		seal = false;
	if (audit_flush(a) == -1) {
		audit_fail_items(a, items, n);
		return;
	}
	pthread_mutex_lock(&a->smu);
	a->st.records += good;
	a->st.reject_summaries += nsum;
	pthread_mutex_unlock(&a->smu);
	a->submitted_done += good;
	audit_complete(a, items, n);
	if (seal)
		(void)audit_after_seal(a, ex);
}

static void
audit_deadline(struct timespec *ts, uint64_t mono_ns)
{
	ts->tv_sec = (time_t)(mono_ns / 1000000000ull);
	ts->tv_nsec = (long)(mono_ns % 1000000000ull);
}

static int
audit_grow_items(struct audit *a)
{
	size_t nc = a->itemcap ? a->itemcap * 2 : 256;
	struct audit_item **ni;
	struct port_item **nl;

	if ((ni = realloc(a->items, nc * sizeof(*ni))) == NULL)
		return -1;
	a->items = ni;
	if ((nl = realloc(a->links, nc * sizeof(*nl))) == NULL)
		return -1;
	a->links = nl;
	a->itemcap = nc;
	return 0;
}

static void *
audit_writer_main(void *arg)
{
	struct audit *a = arg;
	uint64_t deadline = now_mono_ns() + a->epoch_ns;
	struct timespec dl;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		size_t n = 0, bytes = 0;
		bool stop, seal, rotate, summary;
		long long room = -1;
		uint64_t wake;

		/* Wake for the seal, or for a pending reject summary
		 * (audit_reject_admit signals when one opens). */
		for (;;) {
			wake = audit_flood_due(a->flood);
			if (wake == 0 || wake > deadline)
				wake = deadline;
			if (a->qh != NULL || a->closing || a->rotate_req ||
			    a->seal_req || now_mono_ns() >= wake)
				break;
			audit_deadline(&dl, wake);
			pthread_cond_timedwait(&a->cv, &a->mu, &dl);
		}
		summary = wake < deadline && now_mono_ns() >= wake;

		/* With the fault armed, end a batch exactly where the
		 * failure is due, so N records succeed. */
		if (a->fail_after >= 0 && !atomic_load(&a->poisoned) &&
		    a->submitted_done < (uint64_t)a->fail_after)
			room = a->fail_after - (long long)a->submitted_done;
		while (a->qh != NULL) {
			struct audit_item *it = a->qh;
			if (n > 0 && (bytes + it->flen + AFMT_OVERHEAD >
			    AUDIT_BATCH_CAP || (room >= 0 &&
			    (long long)n >= room)))
				break;
			if (n == a->itemcap && audit_grow_items(a) == -1)
				break;
			a->qh = AITEM(it->link.next);
			if (a->qh == NULL)
				a->qt = NULL;
			a->items[n++] = it;
			bytes += it->flen + AFMT_OVERHEAD;
		}
		stop = a->closing && a->qh == NULL;
		seal = stop || a->seal_req || now_mono_ns() >= deadline;
		rotate = a->rotate_req;
		a->seal_req = false;
		a->rotate_req = false;
		pthread_mutex_unlock(&a->mu);

		if (n > 0 || seal || stop || summary)
			audit_writer_round(a, a->items, n,
			    stop && !atomic_load(&a->poisoned), seal);
		if (seal)
			deadline = now_mono_ns() + a->epoch_ns;
		if (!atomic_load(&a->poisoned) && !stop &&
		    (rotate || a->size >= a->max_bytes))
			(void)audit_rotate(a);
		pthread_mutex_lock(&a->mu);
		if (stop)
			break;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Open and close */

static void
audit_free(struct audit *a)
{
	struct audit_item *it;

	if (a == NULL)
		return;
	if (a->fd != -1)
		close(a->fd);
	afmt_key_wipe(&a->key);
	OPENSSL_cleanse(a->body_key, sizeof(a->body_key));
	afmt_idset_free(&a->open);
	audit_flood_free(a->flood);
	while ((it = a->qh) != NULL) {
		a->qh = AITEM(it->link.next);
		free(it);
	}
	free(a->buf);
	free(a->items);
	free(a->links);
	free(a->path);
	free(a->state_path);
	free(a->dir);
	free(a->seal_command);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->smu);
	pthread_mutex_destroy(&a->emu);
	pthread_cond_destroy(&a->ecv);
	free(a);
}

/* The writer and the exporter take no signals: they belong to the
 * main thread's event loop. */
int
audit_spawn(pthread_t *t, void *(*fn)(void *), void *arg, const char *what,
    char *err, size_t errlen)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		snprintf(err, errlen, "cannot start %s: %s", what, strerror(e));
		return -1;
	}
	return 0;
}

static int
audit_start_threads(struct audit *a, char *err, size_t errlen)
{
	if (audit_spawn(&a->writer, audit_writer_main, a, "the audit writer",
	    err, errlen) == -1)
		return -1;
	a->writer_started = true;
	return 0;
}

static void
audit_fault_hook(struct audit *a)
{
	const char *s = getenv("CMGATE_AUDIT_FAIL_AFTER");
	char *end;
	long long n;

	a->fail_after = -1;
	if (s == NULL || *s == '\0')
		return;
	n = strtoll(s, &end, 10);
	if (end == s || n < 0 || (*end != '\0' && strcmp(end, ",fsync") != 0)) {
		log_warn("audit: ignoring CMGATE_AUDIT_FAIL_AFTER=%s", s);
		return;
	}
	a->fail_after = n;
	a->fail_fsync = *end != '\0';
	log_warn("audit: test hook: the %s after %lld records will fail",
	    a->fail_fsync ? "fdatasync" : "write", n);
}

/* The log or the state file at path: 1 there (a regular file; *size
 * set), 0 absent, -1 anything else (a symbolic link is refused: the
 * gateway would write its log or keys wherever it points). */
static int
audit_check_file(const char *what, const char *path, off_t *size,
    char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "%s %s is a symbolic link; refusing to "
		    "follow it (give the real path)", what, path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s is not a regular file", what,
		    path);
		return -1;
	}
	*size = st.st_size;
	return 1;
}

/*
 * What audit_open checks before it writes anything: the body mode; the
 * log and the state file are regular files, not symbolic links; the
 * log's folder can be written; and the keys it would read (the state
 * when there is one, else K0 with no log yet) read and parse.  cmgate
 * -t runs it, and audit_open runs it first, so -t fails on whatever
 * would make the start fail here.
 */
int
audit_check(const struct config *cfg, char *err, size_t errlen)
{
	const char *body = cfg->audit.body ? cfg->audit.body : "digest";
	const char *state = cfg->audit.state_file;
	struct audit *a;
	unsigned char k0[AFMT_KEY_LEN];
	off_t lsize = 0, ssize = 0;
	char *dir, defstate[PATH_MAX];
	int have_log, have_state, rc;

	if (cfg->audit.path == NULL) {
		snprintf(err, errlen, "audit.path is not set");
		return -1;
	}
	if (state == NULL) {
		/* As audit_open: <path>.state */
		snprintf(defstate, sizeof(defstate), "%s.state",
		    cfg->audit.path);
		state = defstate;
	}
	if (strcmp(body, "digest") != 0 && strcmp(body, "redacted") != 0 &&
	    strcmp(body, "full") != 0) {
		snprintf(err, errlen, "audit.body: must be digest, redacted or "
		    "full");
		return -1;
	}
	if ((have_log = audit_check_file("the audit log", cfg->audit.path,
	    &lsize, err, errlen)) == -1 ||
	    (have_state = audit_check_file("the key state", state, &ssize,
	    err, errlen)) == -1)
		return -1;
	if ((dir = audit_dirname(cfg->audit.path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = access(dir, W_OK | X_OK);
	if (rc == -1)
		snprintf(err, errlen, "the audit log's folder %s: %s", dir,
		    strerror(errno));
	free(dir);
	if (rc == -1)
		return -1;
	if (!have_state) {
		if (have_log && lsize > 0) {
			snprintf(err, errlen, "the key state %s is missing but "
			    "the log %s exists: restore the state file, or move "
			    "the log away to begin a new one", state,
			    cfg->audit.path);
			return -1;
		}
		rc = audit_read_k0(cfg->audit.key_file, k0, err, errlen);
		OPENSSL_cleanse(k0, sizeof(k0));
		return rc;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->state_path = (char *)state;
	rc = audit_state_load(a, err, errlen);
	afmt_key_wipe(&a->key);
	OPENSSL_cleanse(a->body_key, sizeof(a->body_key));
	free(a);
	return rc;
}

/* A struct audit with its locks; nothing configured yet.  NULL with
 * err. */
static struct audit *
audit_new(char *err, size_t errlen)
{
	pthread_condattr_t ca;
	struct audit *a;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	if ((a->flood = audit_flood_new()) == NULL) {
		pthread_mutex_destroy(&a->mu);
		free(a);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* The writer's timed waits run on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&a->smu, NULL);
	pthread_mutex_init(&a->emu, NULL);
	pthread_cond_init(&a->ecv, NULL);
	atomic_init(&a->poisoned, false);
	return a;
}

/* Copy what the log needs of cfg->audit, defaults filled in. */
static int
audit_configure(struct audit *a, const struct config *cfg, char *err,
    size_t errlen)
{
	const char *body = cfg->audit.body ? cfg->audit.body : "digest";
	size_t n;

	a->path = strdup(cfg->audit.path);
	if (cfg->audit.state_file)
		a->state_path = strdup(cfg->audit.state_file);
	else if ((a->state_path = malloc((n = strlen(a->path) + 7))) != NULL)
		snprintf(a->state_path, n, "%s.state", a->path);
	a->dir = a->path ? audit_dirname(a->path) : NULL;
	if (cfg->audit.seal_command && *cfg->audit.seal_command)
		a->seal_command = strdup(cfg->audit.seal_command);
	if (a->path == NULL || a->state_path == NULL || a->dir == NULL ||
	    (cfg->audit.seal_command && *cfg->audit.seal_command &&
	    a->seal_command == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->seal_syslog = cfg->audit.seal_syslog;
	a->epoch_ns = (uint64_t)(cfg->audit.epoch_s > 0 ? cfg->audit.epoch_s :
	    60) * 1000000000ull;
	a->max_bytes = cfg->audit.max_bytes > 0 ? (uint64_t)cfg->audit.max_bytes :
	    256ull * 1024 * 1024;
	if (strcmp(body, "digest") == 0)
		a->body = BODY_DIGEST;
	else if (strcmp(body, "redacted") == 0)
		a->body = BODY_REDACTED;
	else if (strcmp(body, "full") == 0)
		a->body = BODY_FULL;
	else {
		snprintf(err, errlen, "audit.body: must be digest, redacted or "
		    "full");
		return -1;
	}
	audit_fault_hook(a);
	return 0;
}

/*
 * The keys: from the state file when there is one, else (a new log:
 * *fresh) a log id and keys derived from K0.  *rotation: a state but no
 * live file, which only a rotation cut short explains
 * (audit_resume_rotation checks that it does).
 */
static int
audit_load_keys(struct audit *a, const char *key_file, bool *fresh,
    bool *rotation, char *err, size_t errlen)
{
	unsigned char k0[AFMT_KEY_LEN];
	struct stat st;
	bool have_state, have_log;
	int rc = -1;

	*fresh = *rotation = false;
	have_state = stat(a->state_path, &st) == 0;
	have_log = stat(a->path, &st) == 0 && st.st_size > 0;
	if (have_state) {
		*rotation = !have_log;
		return audit_state_load(a, err, errlen);
	}
	if (have_log) {
		snprintf(err, errlen, "the key state %s is missing but "
		    "the log %s exists: restore the state file, or move "
		    "the log away to begin a new one", a->state_path,
		    a->path);
		return -1;
	}
	/* A new log: K0 from the auditors' key file. */
	if (audit_read_k0(key_file, k0, err, errlen) == -1)
		return -1;
	if (random_id(a->log_id) == -1 ||
	    afmt_body_key(k0, a->log_id, a->body_key) == -1 ||
	    afmt_key_set(&a->key, k0, 0) == -1)
		snprintf(err, errlen, "cannot derive the log keys");
	else {
		*fresh = true;
		a->next_seq = 1;
		rc = 0;
	}
	OPENSSL_cleanse(k0, sizeof(k0));
	return rc;
}

/* Open (or create) the live file; a new file's name is made durable
 * in its folder. */
static int
audit_open_file(struct audit *a, bool created, char *err, size_t errlen)
{
	if ((a->fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0640)) == -1) {
		snprintf(err, errlen, "%s: %s", a->path, errno == ELOOP ?
		    "a symbolic link; refusing to follow it" : strerror(errno));
		return -1;
	}
	if (created && audit_fsync_dir(a->dir) == -1) {
		snprintf(err, errlen, "%s: fsync: %s", a->dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* The first records of a new log.  Epoch 0 holds only the start record
 * and its seal, so the state file never holds K0. */
static int
audit_begin_log(struct audit *a, const char *key_file, char *err,
    size_t errlen)
{
	char ex[512];

	if (audit_add_start(a, "new", false) == -1 ||
	    audit_add_seal(a, ex, sizeof(ex)) == -1 ||
	    audit_flush(a) == -1 || audit_after_seal(a, ex) == -1) {
		snprintf(err, errlen, "%s: cannot write the first "
		    "records: %s", a->path, strerror(errno));
		return -1;
	}
	log_info("audit: began log %s in %s; K0 (%s) is no longer "
	    "needed on this host", a->log_id, a->path, key_file);
	return 0;
}

struct audit *
audit_open(const struct config *cfg, char *err, size_t errlen)
{
	struct audit *a;
	bool fresh, rotation;

	if (afmt_init() == -1) {
		snprintf(err, errlen, "OpenSSL HMAC-SHA256 is not available");
		return NULL;
	}
	if (cfg->audit.path == NULL) {
		snprintf(err, errlen, "audit.path is not set");
		return NULL;
	}
	if (audit_check(cfg, err, errlen) == -1 ||
	    (a = audit_new(err, errlen)) == NULL)
		return NULL;
	if (audit_configure(a, cfg, err, errlen) == -1 ||
	    audit_start_exporter(a, err, errlen) == -1 ||
	    audit_load_keys(a, cfg->audit.key_file, &fresh, &rotation, err,
	    errlen) == -1 ||
	    audit_open_file(a, fresh || rotation, err, errlen) == -1)
		goto fail;
	a->buflen = 0;
	if ((fresh ? audit_begin_log(a, cfg->audit.key_file, err, errlen) :
	    rotation ? audit_resume_rotation(a, err, errlen) :
	    audit_resume(a, err, errlen)) == -1)
		goto fail;
	a->run_records = 0;
	a->inject_armed = true;
	if (audit_start_threads(a, err, errlen) == -1)
		goto fail;
	return a;
fail:
	audit_stop_exporter(a);
	audit_free(a);
	return NULL;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->writer_started) {
		pthread_mutex_lock(&a->mu);
		a->closing = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->writer, NULL);
	}
	audit_stop_exporter(a);
	if (a->nports > 0)
		log_warn("audit: closed with %zu port(s) still attached",
		    a->nports);
	audit_free(a);
}

bool
audit_healthy(const struct audit *a)
{
	return a != NULL && !atomic_load(&((struct audit *)a)->poisoned);
}

/* Raise one of the writer's request flags (under mu) and wake it. */
static void
audit_request(struct audit *a, bool *flag)
{
	pthread_mutex_lock(&a->mu);
	*flag = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

void
audit_request_rotate(struct audit *a)
{
	if (a != NULL)
		audit_request(a, &a->rotate_req);
}

void
audit_request_seal(struct audit *a)
{
	if (a != NULL)
		audit_request(a, &a->seal_req);
}

const char *
audit_log_id(const struct audit *a)
{
	return a->log_id;
}

/* ------------------------------------------------------------------ */
/* Ports and submission (loop threads) */

static void
audit_port_deliver(void *ctx, struct port_item *pi)
{
	struct audit_item *it = AITEM(pi);

	(void)ctx;
	if (it->cb)
		it->cb(it->ok, it->seq, it->arg);
	free(it);
}

static void
audit_port_drop(void *ctx, struct port_item *pi)
{
	(void)ctx;
	free(AITEM(pi));
}

/* The loop, once per pass: everything it submitted goes to the writer
 * under one lock, and the writer is signalled after the unlock, so it
 * does not wake only to wait for the mutex. */
static void
audit_port_flush(void *ctx, struct port_item *head, struct port_item *tail,
    size_t n)
{
	struct audit *a = ctx;
	struct port_item *pi;

	pthread_mutex_lock(&a->mu);
	if (a->closing || atomic_load(&a->poisoned)) {
		pthread_mutex_unlock(&a->mu);
		for (pi = head; pi != NULL; pi = pi->next) {
			AITEM(pi)->ok = false;
			AITEM(pi)->seq = 0;
		}
		/* port_post relinks each item; walk a copy of the list. */
		while (head != NULL) {
			pi = head;
			head = head->next;
			port_post(&pi, 1);
		}
		return;
	}
	if (a->qt)
		a->qt->link.next = head;
	else
		a->qh = AITEM(head);
	a->qt = AITEM(tail);
	pthread_mutex_unlock(&a->mu);
	pthread_cond_signal(&a->cv);
	(void)n;
}

static const struct port_ops audit_port_ops = {
	.flush = audit_port_flush,
	.deliver = audit_port_deliver,
	.drop = audit_port_drop,
};

struct audit_port *
audit_port_new(struct audit *a, struct event_base *base)
{
	struct audit_port *p;

	if (a == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->a = a;
	if ((p->port = port_new(base, &audit_port_ops, a)) == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_lock(&a->mu);
	a->nports++;
	pthread_mutex_unlock(&a->mu);
	return p;
}

/*
 * Detach a port.  Records it has queued are still written; records in
 * the writer's hands are dropped when they finish (their callbacks are
 * not called).
 */
void
audit_port_free(struct audit_port *p)
{
	struct audit *a;

	if (p == NULL)
		return;
	a = p->a;
	port_free(p->port);
	pthread_mutex_lock(&a->mu);
	a->nports--;
	pthread_mutex_unlock(&a->mu);
	free(p);
}

bool
audit_reject_admit(struct audit *a, const char *addr, const char *reason)
{
	bool opened = false, own;

	if (a == NULL)
		return true;
	own = audit_flood_admit(a->flood, addr, reason, now_mono_ns(),
	    &opened);
	if (opened) {
		/* The writer learns the summary's deadline. */
		pthread_mutex_lock(&a->mu);
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
	}
	return own;
}

static bool
audit_type_ok(const char *type)
{
	size_t i, n = strlen(type);

	if (n == 0 || n > AFMT_MAX_TYPE)
		return false;
	for (i = 0; i < n; i++)
		if (!((type[i] >= 'a' && type[i] <= 'z') || type[i] == '_'))
			return false;
	for (i = 0; audit_reserved_types[i]; i++)
		if (strcmp(type, audit_reserved_types[i]) == 0)
			return false;
	return true;
}

int
audit_submit(struct audit_port *p, const char *type, const char *fields,
    audit_cb cb, void *arg)
{
	struct audit *a;
	struct audit_item *it;
	size_t flen;

	if (p == NULL || (a = p->a) == NULL || atomic_load(&a->poisoned))
		return -1;
	if (fields == NULL)
		fields = "";
	flen = strlen(fields);
	/* A record that does not fit is refused whole, never cut: a
	 * truncated record would claim something it does not say. */
	if (!audit_type_ok(type) || flen + AFMT_OVERHEAD > AFMT_MAX_RECORD ||
	    memchr(fields, '\n', flen) != NULL ||
	    (flen > 0 && (fields[0] == ',' || fields[flen - 1] == ','))) {
		log_error("audit: refusing a malformed or oversized %s record "
		    "(%zu bytes)", type, flen);
		return -1;
	}
	if ((it = malloc(sizeof(*it) + flen + 1)) == NULL)
		return -1;
	it->cb = cb;
	it->arg = arg;
	it->seq = 0;
	it->ok = false;
	snprintf(it->type, sizeof(it->type), "%s", type);
	it->flen = flen;
	memcpy(it->fields, fields, flen + 1);
	/* Sent with the rest of this loop pass's records. */
	port_send(p->port, &it->link);
	return 0;
}
