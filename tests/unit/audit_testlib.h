/*
 * audit_testlib.h: helpers shared by the audit unit tests: a scratch
 * folder with a K0, logs made through the gateway's own writer
 * (audit_open / audit_submit), and the verifier run over buffers.
 */
#ifndef CMGATE_AUDIT_TESTLIB_H
#define CMGATE_AUDIT_TESTLIB_H

#include "audit.h"
#include "audit_format.h"
#include "conf.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#define TA_UNUSED __attribute__((unused))

/* A fixed K0: tests must be repeatable. */
static const char ta_k0_hex[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct ta_env {
	char			 dir[256];
	char			 path[320];
	char			 key[320];
	char			 state[330];
	struct config		 cfg;
	struct event_base	*base;
	unsigned char		 k0[AFMT_KEY_LEN];
};

static TA_UNUSED int
ta_write_file(const char *path, const void *buf, size_t n, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd == -1)
		return -1;
	if (write(fd, buf, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	fchmod(fd, (mode_t)mode);
	return close(fd);
}

static TA_UNUSED int
ta_append(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	if (fd == -1)
		return -1;
	if (write(fd, buf, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static TA_UNUSED void
ta_env_init(struct ta_env *e)
{
	char k[80];

	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/cmgate-audit-test.XXXXXX");
	if (mkdtemp(e->dir) == NULL)
		abort();
	snprintf(e->path, sizeof(e->path), "%s/audit.log", e->dir);
	snprintf(e->key, sizeof(e->key), "%s/k0", e->dir);
	snprintf(e->state, sizeof(e->state), "%s/audit.log.state", e->dir);
	snprintf(k, sizeof(k), "%s\n", ta_k0_hex);
	if (ta_write_file(e->key, k, strlen(k), 0600) == -1)
		abort();
	hex_decode(ta_k0_hex, e->k0, sizeof(e->k0));
	e->cfg.audit.path = e->path;
	e->cfg.audit.key_file = e->key;
	e->cfg.audit.state_file = NULL;
	e->cfg.audit.epoch_s = 3600;
	e->cfg.audit.body = (char *)"digest";
	e->cfg.audit.max_bytes = 256L * 1024 * 1024;
	if ((e->base = event_base_new()) == NULL)
		abort();
}

static TA_UNUSED void
ta_env_free(struct ta_env *e)
{
	DIR *d;
	struct dirent *de;
	char p[600];

	if (e->base)
		event_base_free(e->base);
	e->base = NULL;
	if ((d = opendir(e->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", e->dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(e->dir);
}

/* Callbacks land here; ta_wait() runs the loop until none is pending. */
struct ta_wait {
	int		 pending;
	int		 ok, failed;
	uint64_t	 last_seq;
	uint64_t	 seqs[4096];
	int		 nseqs;
};

static TA_UNUSED void
ta_cb(bool ok, uint64_t seq, void *arg)
{
	struct ta_wait *w = arg;

	w->pending--;
	if (ok) {
		w->ok++;
		w->last_seq = seq;
		if (w->nseqs < 4096)
			w->seqs[w->nseqs++] = seq;
	} else
		w->failed++;
}

static TA_UNUSED int
ta_wait(struct ta_env *e, struct ta_wait *w)
{
	uint64_t end = now_mono_ms() + 20000;

	while (w->pending > 0 && now_mono_ms() < end)
		event_base_loop(e->base, EVLOOP_ONCE);
	return w->pending == 0 ? 0 : -1;
}

static TA_UNUSED int
ta_submit(struct audit_port *p, struct ta_wait *w, const char *type,
    const char *fields)
{
	if (audit_submit(p, type, fields, ta_cb, w) == -1)
		return -1;
	w->pending++;
	return 0;
}

static TA_UNUSED void
ta_request_fields(char *buf, size_t n, const char *id)
{
	snprintf(buf, n, "\"request_id\":\"%.32s\",\"caller\":\"onboarding\","
	    "\"route\":\"POST /management/clients/individuals\","
	    "\"body_digest\":\"%064d\"", id, 7);
}

static TA_UNUSED void
ta_outcome_fields(char *buf, size_t n, const char *id)
{
	snprintf(buf, n, "\"request_id\":\"%.32s\",\"caller\":\"onboarding\","
	    "\"upstream_status\":201,\"latency_ms\":12.345,\"error_class\":"
	    "\"none\",\"response_digest\":\"%064d\",\"client_status\":201",
	    id, 0);
}

/*
 * Submit npairs request/outcome pairs (batches of 8 in flight), a
 * seal after every seal_every pairs.  0 or -1.
 */
static TA_UNUSED int
ta_traffic(struct ta_env *e, struct audit *a, struct audit_port *p,
    int npairs, int seal_every)
{
	char f[512], ids[8][33];
	struct ta_wait w;
	int i, j, k;

	for (i = 0; i < npairs; i += 8) {
		int n = npairs - i < 8 ? npairs - i : 8;
		memset(&w, 0, sizeof(w));
		for (j = 0; j < n; j++) {
			random_id(ids[j]);
			ta_request_fields(f, sizeof(f), ids[j]);
			if (ta_submit(p, &w, "request", f) == -1)
				return -1;
		}
		if (ta_wait(e, &w) == -1 || w.failed)
			return -1;
		for (j = 0; j < n; j++) {
			ta_outcome_fields(f, sizeof(f), ids[j]);
			if (ta_submit(p, &w, "outcome", f) == -1)
				return -1;
		}
		if (ta_wait(e, &w) == -1 || w.failed)
			return -1;
		for (k = i; k < i + n; k++)
			if (seal_every > 0 && (k + 1) % seal_every == 0)
				audit_request_seal(a);
	}
	return 0;
}

/* Wait until the writer has made `calls` more fdatasync calls. */
static TA_UNUSED void
ta_wait_fsyncs(struct audit *a, uint64_t from, uint64_t calls)
{
	uint64_t f = 0, end = now_mono_ms() + 10000;

	do {
		audit_io_counts(a, NULL, &f);
		if (f >= from + calls)
			return;
		usleep(2000);
	} while (now_mono_ms() < end);
}

static TA_UNUSED char *
ta_slurp(const char *path, size_t *len)
{
	char *buf = NULL, err[256];

	if (read_file(path, 64u * 1024 * 1024, &buf, len, err,
	    sizeof(err)) == -1)
		return NULL;
	return buf;
}

/* ---- running the verifier ---- */

struct ta_result {
	int		 failures, infos;
	int		 count[16];
	uint64_t	 seq[16], seq_end[16];	/* of the first of each kind */
	struct afmt_finding first;		/* first failure */
	struct afmt_summary sum;
	/* every failure's seq range, to check which record is named */
	uint64_t	 fseq[32], fend[32];
	int		 nf;
};

static TA_UNUSED void
ta_collect(const struct afmt_finding *f, void *arg)
{
	struct ta_result *r = arg;

	if (r->count[f->kind]++ == 0) {
		r->seq[f->kind] = f->seq;
		r->seq_end[f->kind] = f->seq_end;
	}
	if (afmt_kind_is_failure(f->kind)) {
		if (r->failures++ == 0)
			r->first = *f;
		if (r->nf < 32) {
			r->fseq[r->nf] = f->seq;
			r->fend[r->nf] = f->seq_end;
			r->nf++;
		}
	} else
		r->infos++;
}

/* Does some failure name seq s? */
static TA_UNUSED bool
ta_names(const struct ta_result *r, uint64_t s)
{
	int i;

	for (i = 0; i < r->nf; i++)
		if (r->fseq[i] <= s && s <= r->fend[i])
			return true;
	return false;
}

struct ta_anchor {
	uint64_t	 seq;
	unsigned char	 head[AFMT_HASH_LEN];
};

/* Verify bufs[0..n) as files of one log with K0. */
static TA_UNUSED void
ta_verify(const unsigned char *k0, const char *const *bufs,
    const size_t *lens, int n, const struct ta_anchor *anchor,
    struct ta_result *r)
{
	static const char *names[] = { "f0", "f1", "f2", "f3", "f4", "f5",
	    "f6", "f7", "f8", "f9" };
	struct afmt_vfy *v;
	int i;

	memset(r, 0, sizeof(*r));
	v = afmt_vfy_new(k0, 0, ta_collect, r);
	if (v == NULL)
		abort();
	if (anchor)
		afmt_vfy_anchor(v, anchor->seq, anchor->head);
	for (i = 0; i < n; i++) {
		afmt_vfy_file(v, names[i % 10]);
		afmt_vfy_buffer(v, bufs[i], lens[i]);
	}
	afmt_vfy_finish(v);
	afmt_vfy_summary(v, &r->sum);
	afmt_vfy_free(v);
}

static TA_UNUSED void
ta_verify1(const unsigned char *k0, const char *buf, size_t len,
    const struct ta_anchor *anchor, struct ta_result *r)
{
	ta_verify(k0, &buf, &len, 1, anchor, r);
}

/* Offsets of the lines of buf: off[i], with off[n] = len. */
static TA_UNUSED size_t
ta_lines(const char *buf, size_t len, size_t *off, size_t max)
{
	size_t n = 0, o = 0;

	while (o < len && n < max) {
		const char *nl = memchr(buf + o, '\n', len - o);
		off[n++] = o;
		o = nl ? (size_t)(nl - buf) + 1 : len;
	}
	off[n] = len;
	return n;
}

#endif
