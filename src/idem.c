/*
 * idem.c: the Idempotency-Key store (see idem.h).
 *
 * Two halves.  The in-flight set is a tsearch(3) tree of claims under
 * one mutex: claiming is a few comparisons, never I/O, so it is done
 * synchronously on the loop thread.  The stored records live in LMDB;
 * every LMDB transaction runs on the store thread, which takes all
 * queued jobs at once, serves the lookups in one read transaction,
 * writes all stores (and a bounded purge batch) in one write
 * transaction, commits (fdatasync), takes the stored claims out of the
 * in-flight set, and hands the jobs back to their loops' ports.
 *
 * LMDB layout: two named databases.
 *   "main": caller NUL key -> record (see idem_encode)
 *   "exp":  be64(expires_ms) caller NUL key -> empty, for the purge,
 *           which walks it from the start and stops at the first entry
 *           not yet expired.  A key stored again leaves its old "exp"
 *           entry behind; the purge drops it without touching the newer
 *           record (the expiry times differ).
 *
 * Keys per caller (idempotency.max_keys_per_caller): the store thread
 * counts each caller's records once when it starts (before any job),
 * then keeps the counts as its commits add records and its purge
 * deletes them, under mu.  A lookup that finds no record reserves a
 * place in its caller's count until the outcome is stored or the claim
 * released, so concurrent new keys cannot overshoot the cap; a caller
 * at the cap gets IDEM_OVER_QUOTA for a new key (its stored keys still
 * replay).
 */
#include "idem.h"
#include "idem_txn.h"
#include "conf.h"
#include "log.h"
#include "port.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <lmdb.h>

#define IDEM_HDR_LEN		88
#define IDEM_VERSION		1
/* caller NUL key; caller names are at most 64 characters, and a key
 * is scoped by its route (see IDEM_SCOPED_KEY_MAX) */
#define IDEM_DBKEY_MAX		(64 + 1 + IDEM_SCOPED_KEY_MAX)
#define IDEM_MAP_INITIAL	((size_t)256 << 20)
#define IDEM_MAP_MAX		((size_t)64 << 30)
#define IDEM_PURGE_MS		60000
#define IDEM_PURGE_BATCH	1000
#define IDEM_CT_MAX		1024
#define IDEM_CALLER_MAX		64	/* characters of a caller name */
/* Distinct callers in one purge batch; more end the batch early. */
#define IDEM_PURGE_CALLERS	16

struct idem_claim {
	struct idem		*im;
	struct idem_port	*port;
	char			 key[IDEM_DBKEY_MAX + 1];
	size_t			 klen;
	unsigned char		 digest[IDEM_DIGEST_LEN];
	char			 request_id[ID_BUF];
	/* Loop thread only: references (the owner, and each job not yet
	 * back), whether the request still holds it, whether a store job
	 * was queued. */
	int			 refs;
	bool			 owner;
	bool			 storing;
	/* Under im->mu: */
	bool			 in_map;
	bool			 reserved;	/* a place in the key count */
};

/* Records held by one caller (the store's, under im->mu). */
struct idem_count {
	char			 caller[IDEM_CALLER_MAX + 1];
	uint64_t		 stored;
	uint64_t		 reserved;	/* new keys not yet stored */
};

/* Records a write round added (+) or purged (-) for one caller; applied
 * to the counts only once the round has committed. */
struct idem_delta {
	char			 caller[IDEM_CALLER_MAX + 1];
	uint64_t		 purged;
};

/*
 * LOOKUP and STORE carry a claim; a CALL carries work of another module
 * (owners.c) run in the round's read (CALL_READ) or write (CALL_WRITE)
 * transaction, and its handle, which the loop may cancel.
 */
enum idem_job_kind {
	IDEM_JOB_LOOKUP, IDEM_JOB_STORE, IDEM_JOB_CALL_READ, IDEM_JOB_CALL_WRITE
};

struct idem_call {
	idem_txn_fn		 work;	/* store thread */
	idem_done_fn		 done;	/* loop thread (see idem_call()) */
	void			*arg;
	int			 rc;	/* work's result; -1 store failed */
};

struct idem_job {
	struct port_item	 link;	/* first: to and from the loop */
	struct idem_job		*next;	/* the store thread's lists */
	enum idem_job_kind	 kind;
	struct idem_claim	*claim;
	struct idem_port	*port;
	idem_lookup_cb		 lcb;
	idem_store_cb		 scb;
	void			*arg;
	int			 found;		/* lookup: 1, 0, -1, -2 */
	uint64_t		 max_keys;	/* lookup: the caller's cap */
	bool			 ok;		/* store: durable */
	bool			 is_new;	/* store: a key not held before */
	uint64_t		 expires_ms;	/* store */
	unsigned char		*val;		/* encoded record */
	size_t			 vlen;
	struct idem_call	 call;		/* CALL_READ, CALL_WRITE */
};

#define IJOB(pi)	((struct idem_job *)(void *)(pi))

struct idem_port {
	struct idem		*im;
	struct port		*port;
};

struct idem {
	MDB_env			*env;
	MDB_dbi			 dbi_main, dbi_exp;
	struct idem_dbis	 dbis;		/* for CALL work (owners.c) */
	size_t			 mapsize;	/* store thread */
	size_t			 map_max;
	int			 lockfd;
	uint64_t		 purge_ms;

	pthread_t		 thread;
	bool			 started;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct idem_job		*qh, *qt;	/* under mu */
	bool			 stopping;	/* under mu */
	void			*inflight; /* tsearch root, under mu */
	struct idem_count	*counts;	/* under mu */
	size_t			 ncounts, capcounts;
	atomic_bool		 failed;
};

struct idem_db {
	MDB_env			*env;
	MDB_dbi			 dbi_main, dbi_exp;
	struct idem_dbis	 dbis;
	bool			 write;
};

/* ---- small helpers ---------------------------------------------- */

static uint64_t
idem_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
idem_put_le(unsigned char *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
idem_get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
idem_put_be64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t
idem_get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* caller NUL key into out; the length, or -1 when it does not fit. */
static int
idem_dbkey(const char *caller, const char *key, char *out)
{
	size_t c = strlen(caller), k = strlen(key);

	if (c == 0 || k == 0 || k > IDEM_SCOPED_KEY_MAX ||
	    c + 1 + k > IDEM_DBKEY_MAX)
		return -1;
	memcpy(out, caller, c);
	out[c] = '\0';
	memcpy(out + c + 1, key, k);
	out[c + 1 + k] = '\0';
	return (int)(c + 1 + k);
}

/* The caller part of a store key ("caller NUL key") into out. */
static void
idem_key_caller(const char *k, size_t klen, char out[IDEM_CALLER_MAX + 1])
{
	size_t n = strnlen(k, klen);

	if (n > IDEM_CALLER_MAX)
		n = IDEM_CALLER_MAX;
	memcpy(out, k, n);
	out[n] = '\0';
}

/* Under im->mu: the count of caller, made when create; NULL if none
 * (or out of memory). */
static struct idem_count *
idem_count_of(struct idem *im, const char *caller, bool create)
{
	struct idem_count *nc;
	size_t i, cap;

	for (i = 0; i < im->ncounts; i++)
		if (strcmp(im->counts[i].caller, caller) == 0)
			return &im->counts[i];
	if (!create)
		return NULL;
	if (im->ncounts == im->capcounts) {
		cap = im->capcounts ? im->capcounts * 2 : 16;
		if ((nc = realloc(im->counts, cap * sizeof(*nc))) == NULL)
			return NULL;
		im->counts = nc;
		im->capcounts = cap;
	}
	nc = &im->counts[im->ncounts++];
	memset(nc, 0, sizeof(*nc));
	snprintf(nc->caller, sizeof(nc->caller), "%s", caller);
	return nc;
}

/* Under im->mu: give back a claim's place in its caller's count. */
static void
idem_unreserve(struct idem *im, struct idem_claim *c)
{
	char caller[IDEM_CALLER_MAX + 1];
	struct idem_count *n;

	if (!c->reserved)
		return;
	c->reserved = false;
	idem_key_caller(c->key, c->klen, caller);
	if ((n = idem_count_of(im, caller, false)) != NULL && n->reserved > 0)
		n->reserved--;
}

/*
 * The record, little-endian:
 *   0 version (1)   1 state   2 status (u16)   4 content-type length (u32)
 *   8 created_ms (u64)   16 expires_ms (u64)   24 body digest (32)
 *   56 original request id (32 hex)   88 content type, then the body
 */
static unsigned char *
idem_encode(const struct idem_claim *c, enum idem_state st, int status,
    uint64_t created, uint64_t expires, const char *ct, const void *body,
    size_t blen, size_t *vlen)
{
	size_t ctlen = ct ? strnlen(ct, IDEM_CT_MAX) : 0;
	unsigned char *v;

	if (blen > SIZE_MAX - IDEM_HDR_LEN - ctlen ||
	    (v = malloc(IDEM_HDR_LEN + ctlen + blen)) == NULL)
		return NULL;
	v[0] = IDEM_VERSION;
	v[1] = (unsigned char)st;
	idem_put_le(v + 2, (uint64_t)status, 2);
	idem_put_le(v + 4, ctlen, 4);
	idem_put_le(v + 8, created, 8);
	idem_put_le(v + 16, expires, 8);
	memcpy(v + 24, c->digest, IDEM_DIGEST_LEN);
	memcpy(v + 56, c->request_id, 32);
	if (ctlen)
		memcpy(v + IDEM_HDR_LEN, ct, ctlen);
	if (blen)
		memcpy(v + IDEM_HDR_LEN + ctlen, body, blen);
	*vlen = IDEM_HDR_LEN + ctlen + blen;
	return v;
}

/*
 * Decode a record that is valid while v is; content_type points into
 * ctbuf (NUL-terminated).  -1 on a malformed record.
 */
static int
idem_decode(const unsigned char *v, size_t n, struct idem_record *rec,
    char *ctbuf, size_t ctcap)
{
	size_t ctlen;

	if (n < IDEM_HDR_LEN || v[0] != IDEM_VERSION ||
	    (v[1] != IDEM_COMPLETED && v[1] != IDEM_UNKNOWN))
		return -1;
	ctlen = (size_t)idem_get_le(v + 4, 4);
	if (ctlen > n - IDEM_HDR_LEN || ctlen >= ctcap)
		return -1;
	memset(rec, 0, sizeof(*rec));
	rec->state = (enum idem_state)v[1];
	rec->status = (int)idem_get_le(v + 2, 2);
	rec->created_ms = idem_get_le(v + 8, 8);
	rec->expires_ms = idem_get_le(v + 16, 8);
	memcpy(rec->digest, v + 24, IDEM_DIGEST_LEN);
	memcpy(rec->request_id, v + 56, 32);
	rec->request_id[32] = '\0';
	memcpy(ctbuf, v + IDEM_HDR_LEN, ctlen);
	ctbuf[ctlen] = '\0';
	rec->content_type = ctbuf;
	rec->body = (const char *)v + IDEM_HDR_LEN + ctlen;
	rec->body_len = n - IDEM_HDR_LEN - ctlen;
	return 0;
}

int
idem_parse_key(const char *value, char *out)
{
	size_t n = 0;
	const char *p;

	if (value == NULL)
		return -1;
	if (value[0] == '"') {
		/* The draft's sf-string: "..." with \" and \\ only. */
		for (p = value + 1; *p != '"'; p++) {
			if (*p == '\\') {
				p++;
				if (*p != '"' && *p != '\\')
					return -1;
			} else if (*p < 0x20 || *p > 0x7e)
				return -1;
			if (n == IDEM_KEY_MAX)
				return -1;
			out[n++] = *p;
		}
		if (p[1] != '\0')
			return -1;
	} else {
		for (p = value; *p; p++) {
			if (*p < 0x20 || *p > 0x7e || n == IDEM_KEY_MAX)
				return -1;
			out[n++] = *p;
		}
	}
	if (n == 0)
		return -1;
	out[n] = '\0';
	return (int)n;
}

/* ---- the in-flight set ------------------------------------------ */

static int
idem_claim_cmp(const void *a, const void *b)
{
	const struct idem_claim *x = a, *y = b;

	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	return memcmp(x->key, y->key, x->klen);
}

enum idem_begin_result
idem_begin(struct idem_port *p, const char *caller, const char *key,
    const unsigned char digest[IDEM_DIGEST_LEN], const char *request_id,
    struct idem_claim **out)
{
	struct idem *im = p->im;
	struct idem_claim *c, **found;
	int klen;

	*out = NULL;
	if (atomic_load(&im->failed) || (c = calloc(1, sizeof(*c))) == NULL)
		return IDEM_DOWN;
	if ((klen = idem_dbkey(caller, key, c->key)) == -1) {
		free(c);
		return IDEM_DOWN;
	}
	c->klen = (size_t)klen;
	c->im = im;
	c->port = p;
	memcpy(c->digest, digest, IDEM_DIGEST_LEN);
	snprintf(c->request_id, sizeof(c->request_id), "%s", request_id);
	c->refs = 1;
	c->owner = true;

	pthread_mutex_lock(&im->mu);
	found = tsearch(c, &im->inflight, idem_claim_cmp);
	if (found != NULL && *found == c)
		c->in_map = true;
	pthread_mutex_unlock(&im->mu);
	if (found == NULL) {
		free(c);
		return IDEM_DOWN;
	}
	if (*found != c) {
		/* Only the digest is read: it never changes after insert. */
		bool same = memcmp((*found)->digest, digest,
		    IDEM_DIGEST_LEN) == 0;
		free(c);
		return same ? IDEM_IN_FLIGHT : IDEM_IN_FLIGHT_OTHER;
	}
	*out = c;
	return IDEM_NEW;
}

/* Loop thread: drop one reference; the last one frees. */
static void
idem_claim_unref(struct idem_claim *c)
{
	if (--c->refs == 0)
		free(c);
}

static void
idem_unmap(struct idem *im, struct idem_claim *c)
{
	if (c->in_map) {
		tdelete(c, &im->inflight, idem_claim_cmp);
		c->in_map = false;
	}
}

void
idem_release(struct idem_claim *c)
{
	struct idem *im;

	if (c == NULL)
		return;
	im = c->im;
	c->owner = false;
	/* A stored key leaves the set after its commit (store thread). */
	if (!c->storing) {
		pthread_mutex_lock(&im->mu);
		idem_unmap(im, c);
		idem_unreserve(im, c);
		pthread_mutex_unlock(&im->mu);
	}
	idem_claim_unref(c);
}

/* ---- job submission (loop threads) ------------------------------ */

/* Sent to the store thread with the rest of the loop pass's jobs; a
 * store that has stopped fails them back (idem_port_flush). */
static void
idem_send(struct idem_job *j)
{
	if (j->claim != NULL)
		j->claim->refs++;
	port_send(j->port->port, &j->link);
}

int
idem_call(struct idem_port *p, bool write, idem_txn_fn work,
    idem_done_fn done, void *arg)
{
	struct idem_job *j;

	if (p == NULL || atomic_load(&p->im->failed) ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->kind = write ? IDEM_JOB_CALL_WRITE : IDEM_JOB_CALL_READ;
	j->port = p;
	j->call.work = work;
	j->call.done = done;
	j->call.arg = arg;
	j->call.rc = -1;
	idem_send(j);
	return 0;
}

int
idem_lookup(struct idem_claim *c, uint64_t max_keys, idem_lookup_cb cb,
    void *arg)
{
	struct idem_job *j;

	if (atomic_load(&c->im->failed) || (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->kind = IDEM_JOB_LOOKUP;
	j->max_keys = max_keys;
	j->claim = c;
	j->port = c->port;
	j->lcb = cb;
	j->arg = arg;
	idem_send(j);
	return 0;
}

int
idem_store(struct idem_claim *c, enum idem_state st, int status,
    const char *content_type, const void *body, size_t len, long ttl_s,
    idem_store_cb cb, void *arg)
{
	struct idem_job *j;
	uint64_t now = idem_now_ms();

	if (c->storing || atomic_load(&c->im->failed) ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->kind = IDEM_JOB_STORE;
	j->claim = c;
	j->port = c->port;
	j->scb = cb;
	j->arg = arg;
	j->expires_ms = now + (uint64_t)(ttl_s > 0 ? ttl_s : 1) * 1000u;
	if ((j->val = idem_encode(c, st, status, now, j->expires_ms,
	    content_type, body, len, &j->vlen)) == NULL) {
		free(j);
		return -1;
	}
	c->storing = true;
	idem_send(j);
	return 0;
}

/* ---- ports: to the store thread and back (port.h) -------------- */

static void
idem_port_deliver(void *ctx, struct port_item *pi)
{
	struct idem_job *j = IJOB(pi);
	struct idem_claim *c = j->claim;
	struct idem_record rec;
	char ct[IDEM_CT_MAX + 1];

	(void)ctx;
	if (j->kind == IDEM_JOB_CALL_READ || j->kind == IDEM_JOB_CALL_WRITE) {
		j->call.done(j->call.rc, j->call.arg);
		free(j);
		return;
	}
	if (c->owner && j->kind == IDEM_JOB_LOOKUP) {
		int found = j->found;
		if (found == 1 && idem_decode(j->val, j->vlen, &rec, ct,
		    sizeof(ct)) == -1)
			found = -1;
		j->lcb(found, found == 1 ? &rec : NULL, j->arg);
	} else if (c->owner && j->kind == IDEM_JOB_STORE && j->scb)
		j->scb(j->ok, j->arg);
	idem_claim_unref(c);
	free(j->val);
	free(j);
}

/* A job back for a loop that is gone: its requests are gone too (their
 * claims released), so no other thread holds the claim now. */
static void
idem_port_drop(void *ctx, struct port_item *pi)
{
	struct idem_job *j = IJOB(pi);

	(void)ctx;
	if (j->kind == IDEM_JOB_CALL_READ || j->kind == IDEM_JOB_CALL_WRITE)
		j->call.done(-1, j->call.arg);	/* its owner is gone */
	if (j->claim != NULL)
		idem_claim_unref(j->claim);
	free(j->val);
	free(j);
}

/* The loop, once per pass: its jobs go to the store thread under one
 * lock; the signal comes after the unlock. */
static void
idem_port_flush(void *ctx, struct port_item *head, struct port_item *tail,
    size_t n)
{
	struct idem *im = ctx;
	struct port_item *pi;

	(void)n;
	for (pi = head; pi != NULL; pi = pi->next)
		IJOB(pi)->next = pi->next ? IJOB(pi->next) : NULL;
	pthread_mutex_lock(&im->mu);
	if (im->stopping) {
		pthread_mutex_unlock(&im->mu);
		while (head != NULL) {
			pi = head;
			head = head->next;
			IJOB(pi)->found = -1;
			IJOB(pi)->ok = false;
			port_post(&pi, 1);
		}
		return;
	}
	if (im->qt)
		im->qt->next = IJOB(head);
	else
		im->qh = IJOB(head);
	im->qt = IJOB(tail);
	pthread_mutex_unlock(&im->mu);
	pthread_cond_signal(&im->cv);
}

static const struct port_ops idem_port_ops = {
	.flush = idem_port_flush,
	.deliver = idem_port_deliver,
	.drop = idem_port_drop,
};

struct idem_port *
idem_port_new(struct idem *im, struct event_base *base)
{
	struct idem_port *p;

	if (im == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->im = im;
	if ((p->port = port_new(base, &idem_port_ops, im)) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

/*
 * Detach a port: its loop is going away, after its requests (and so
 * their claims' owners) are gone.  Jobs still with the store thread
 * finish there (a store is still committed) and are dropped with their
 * claims.
 */
void
idem_port_free(struct idem_port *p)
{
	if (p == NULL)
		return;
	port_free(p->port);
	free(p);
}

/* ---- the store thread ------------------------------------------- */

/*
 * A lookup found no record: the key is new to its caller.  Reserve a
 * place in the caller's count, or IDEM_OVER_QUOTA when the caller holds
 * max_keys already (stored, or reserved by its other new keys in
 * flight).  A claim released meanwhile reserves nothing.
 */
static int
idem_reserve(struct idem *im, struct idem_job *j)
{
	char caller[IDEM_CALLER_MAX + 1];
	struct idem_count *n;
	int found = 0;

	idem_key_caller(j->claim->key, j->claim->klen, caller);
	pthread_mutex_lock(&im->mu);
	if ((n = idem_count_of(im, caller, true)) != NULL) {
		if (n->stored + n->reserved >= j->max_keys)
			found = IDEM_OVER_QUOTA;
		else if (j->claim->in_map) {
			n->reserved++;
			j->claim->reserved = true;
		}
	}
	pthread_mutex_unlock(&im->mu);
	return found;
}

static void
idem_lookups(struct idem *im, struct idem_job *jobs)
{
	struct idem_job *j;
	MDB_txn *txn = NULL;
	uint64_t now = idem_now_ms();
	int rc;

	for (j = jobs; j; j = j->next)
		if (j->kind == IDEM_JOB_LOOKUP || j->kind == IDEM_JOB_CALL_READ)
			break;
	if (j == NULL)
		return;
	rc = mdb_txn_begin(im->env, NULL, MDB_RDONLY, &txn);
	if (rc == MDB_MAP_RESIZED && mdb_env_set_mapsize(im->env, 0) == 0)
		rc = mdb_txn_begin(im->env, NULL, MDB_RDONLY, &txn);
	for (; j; j = j->next) {
		MDB_val k, v;
		int grc;

		if (j->kind == IDEM_JOB_CALL_READ) {
			struct idem_txn t = { txn, &im->dbis };
			j->call.rc = rc == 0 ? j->call.work(&t, j->call.arg) :
			    -1;
			continue;
		}
		if (j->kind != IDEM_JOB_LOOKUP)
			continue;
		j->found = -1;
		if (rc != 0)
			continue;
		k.mv_data = j->claim->key;
		k.mv_size = j->claim->klen;
		grc = mdb_get(txn, im->dbi_main, &k, &v);
		if (grc == MDB_NOTFOUND) {
			j->found = idem_reserve(im, j);
			continue;
		}
		if (grc != 0 || v.mv_size < IDEM_HDR_LEN) {
			log_error("idempotency: read: %s", grc ?
			    mdb_strerror(grc) : "malformed record");
			continue;
		}
		/* Expired but not yet purged: as good as gone. */
		if (idem_get_le((const unsigned char *)v.mv_data + 16, 8) <=
		    now) {
			j->found = 0;
			continue;
		}
		if ((j->val = malloc(v.mv_size)) == NULL)
			continue;
		memcpy(j->val, v.mv_data, v.mv_size);
		j->vlen = v.mv_size;
		j->found = 1;
	}
	if (rc != 0)
		log_error("idempotency: read transaction: %s",
		    mdb_strerror(rc));
	else
		mdb_txn_abort(txn);
}

/* Note one purged record of key's caller in dl (*ndl used); -1 when
 * dl is full with other callers. */
static int
idem_delta_add(struct idem_delta *dl, size_t *ndl, const char *key,
    size_t klen)
{
	char caller[IDEM_CALLER_MAX + 1];
	size_t i;

	idem_key_caller(key, klen, caller);
	for (i = 0; i < *ndl; i++)
		if (strcmp(dl[i].caller, caller) == 0) {
			dl[i].purged++;
			return 0;
		}
	if (*ndl == IDEM_PURGE_CALLERS)
		return -1;
	memcpy(dl[*ndl].caller, caller, sizeof(caller));
	dl[(*ndl)++].purged = 1;
	return 0;
}

/*
 * One purge batch inside txn; *more when the batch was full (or held
 * records of more callers than dl has room for).  Each record deleted
 * from "main" is noted in dl for the key counts.
 */
static int
idem_purge_batch(MDB_txn *txn, MDB_dbi dmain, MDB_dbi dexp, uint64_t now,
    size_t *n, bool *more, struct idem_delta *dl, size_t *ndl)
{
	MDB_cursor *cur;
	MDB_val k, v, mk, mv;
	unsigned char kb[8 + IDEM_DBKEY_MAX];
	uint64_t exp;
	int rc;
	bool live;

	*n = 0;
	*more = false;
	*ndl = 0;
	if ((rc = mdb_cursor_open(txn, dexp, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		if (*n >= IDEM_PURGE_BATCH) {
			*more = true;
			break;
		}
		if (k.mv_size > 8 && k.mv_size <= sizeof(kb)) {
			memcpy(kb, k.mv_data, k.mv_size);
			exp = idem_get_be64(kb);
			if (exp > now)
				break;
			mk.mv_data = kb + 8;
			mk.mv_size = k.mv_size - 8;
			live = mdb_get(txn, dmain, &mk, &mv) == 0 &&
			    (mv.mv_size < IDEM_HDR_LEN || idem_get_le(
			    (const unsigned char *)mv.mv_data + 16, 8) == exp);
			if (live && idem_delta_add(dl, ndl,
			    (const char *)mk.mv_data, mk.mv_size) == -1) {
				/* The rest in the next batch. */
				*more = true;
				break;
			}
			if (live && (rc = mdb_del(txn, dmain, &mk, NULL)) != 0)
				break;
		}
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		(*n)++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Put a record (*is_new: the key had none). */
static int
idem_put(MDB_txn *txn, MDB_dbi dmain, MDB_dbi dexp, const char *key,
    size_t klen, uint64_t expires, unsigned char *val, size_t vlen,
    bool *is_new)
{
	unsigned char kb[8 + IDEM_DBKEY_MAX];
	MDB_val k, v, old;
	int rc;

	k.mv_data = (void *)key;
	k.mv_size = klen;
	if ((rc = mdb_get(txn, dmain, &k, &old)) != 0 && rc != MDB_NOTFOUND)
		return rc;
	*is_new = rc == MDB_NOTFOUND;
	v.mv_data = val;
	v.mv_size = vlen;
	if ((rc = mdb_put(txn, dmain, &k, &v, 0)) != 0)
		return rc;
	idem_put_be64(kb, expires);
	memcpy(kb + 8, key, klen);
	k.mv_data = kb;
	k.mv_size = 8 + klen;
	v.mv_data = kb;
	v.mv_size = 0;
	return mdb_put(txn, dexp, &k, &v, 0);
}

/*
 * Write every store job of the round and, when due, a purge batch, in
 * one transaction; grow the map and try again when it is full.
 */
static int
idem_writes(struct idem *im, struct idem_job *jobs, bool purge,
    size_t *purged, bool *more, struct idem_delta *dl, size_t *ndl)
{
	struct idem_job *j;
	MDB_txn *txn;
	size_t grow;
	int rc, nstore = 0;

	*purged = 0;
	*more = false;
	*ndl = 0;
	for (j = jobs; j; j = j->next)
		nstore += j->kind == IDEM_JOB_STORE ||
		    j->kind == IDEM_JOB_CALL_WRITE;
	if (nstore == 0 && !purge)
		return 0;
	for (;;) {
		rc = mdb_txn_begin(im->env, NULL, 0, &txn);
		if (rc == MDB_MAP_RESIZED &&
		    (rc = mdb_env_set_mapsize(im->env, 0)) == 0)
			continue;
		if (rc != 0)
			return rc;
		for (j = jobs; j && rc == 0; j = j->next)
			if (j->kind == IDEM_JOB_STORE)
				rc = idem_put(txn, im->dbi_main, im->dbi_exp,
				    j->claim->key, j->claim->klen,
				    j->expires_ms, j->val, j->vlen,
				    &j->is_new);
			else if (j->kind == IDEM_JOB_CALL_WRITE) {
				/* Work that fails on its own terms says so in
				 * its result; an LMDB error aborts the round
				 * (and a full map retries it, so the work must
				 * be safe to run twice). */
				struct idem_txn t = { txn, &im->dbis };
				j->call.rc = j->call.work(&t, j->call.arg);
				if (j->call.rc < -1)
					rc = -j->call.rc;
			}
		if (rc == 0 && purge)
			rc = idem_purge_batch(txn, im->dbi_main, im->dbi_exp,
			    idem_now_ms(), purged, more, dl, ndl);
		if (rc == 0)
			rc = mdb_txn_commit(txn);	/* fdatasync */
		else
			mdb_txn_abort(txn);
		if (rc != MDB_MAP_FULL)
			return rc;
		if (im->mapsize >= im->map_max)
			return rc;
		grow = im->mapsize > im->map_max / 2 ? im->map_max :
		    im->mapsize * 2;
		/* No transaction is open in this process: safe to grow. */
		if (mdb_env_set_mapsize(im->env, grow) != 0)
			return rc;
		im->mapsize = grow;
		log_info("idempotency: store grown to %zu MiB",
		    im->mapsize >> 20);
	}
}

/* Hand jobs back to their loops. */
static void
idem_complete(struct idem *im, struct idem_job *jobs)
{
	struct idem_job *j, *next;

	(void)im;
	for (j = jobs; j; j = next) {
		struct port_item *pi = &j->link;

		next = j->next;
		j->next = NULL;
		port_post(&pi, 1);
	}
}

static void
idem_round(struct idem *im, struct idem_job *jobs, bool purge,
    size_t *purged, bool *more)
{
	struct idem_delta dl[IDEM_PURGE_CALLERS];
	struct idem_count *cnt;
	struct idem_job *j;
	char caller[IDEM_CALLER_MAX + 1];
	size_t ndl = 0, i;
	int rc;

	idem_lookups(im, jobs);
	rc = idem_writes(im, jobs, purge, purged, more, dl, &ndl);
	if (rc != 0) {
		/* Fail closed: without a durable store, a retry could make
		 * a duplicate; keyed requests get 503 from now on. */
		if (!atomic_exchange(&im->failed, true))
			log_error("idempotency: store failed: %s; keyed "
			    "requests are refused until a restart",
			    mdb_strerror(rc));
	}
	pthread_mutex_lock(&im->mu);
	/* The key counts follow what was committed. */
	for (i = 0; rc == 0 && i < ndl; i++)
		if ((cnt = idem_count_of(im, dl[i].caller, false)) != NULL)
			cnt->stored -= cnt->stored < dl[i].purged ?
			    cnt->stored : dl[i].purged;
	for (j = jobs; j; j = j->next) {
		if (j->kind == IDEM_JOB_CALL_WRITE && rc != 0)
			j->call.rc = -1;	/* not durable */
		if (j->kind != IDEM_JOB_STORE)
			continue;
		idem_unreserve(im, j->claim);
		if (rc == 0 && j->is_new) {
			idem_key_caller(j->claim->key, j->claim->klen, caller);
			if ((cnt = idem_count_of(im, caller, true)) != NULL)
				cnt->stored++;
		}
		j->ok = rc == 0;
		if (rc != 0)
			log_error("idempotency: the outcome of request %s was "
			    "not stored", j->claim->request_id);
		/* Durable (or failed): later lookups read the store. */
		idem_unmap(im, j->claim);
		free(j->val);
		j->val = NULL;
	}
	pthread_mutex_unlock(&im->mu);
	idem_complete(im, jobs);
}

/*
 * Count each caller's records (the key counts), in one read
 * transaction, before the first job: the counts then survive a restart
 * without a counter of their own in the store.  Expired records not
 * yet purged count until the purge deletes them.  -1 on a read error.
 */
static int
idem_count_all(struct idem *im)
{
	char caller[IDEM_CALLER_MAX + 1];
	struct idem_count *cnt;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_txn_begin(im->env, NULL, MDB_RDONLY, &txn)) != 0)
		return -1;
	if ((rc = mdb_cursor_open(txn, im->dbi_main, &cur)) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	pthread_mutex_lock(&im->mu);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		idem_key_caller(k.mv_data, k.mv_size, caller);
		if ((cnt = idem_count_of(im, caller, true)) == NULL) {
			rc = ENOMEM;
			break;
		}
		cnt->stored++;
	}
	pthread_mutex_unlock(&im->mu);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : -1;
}

static void *
idem_main(void *arg)
{
	struct idem *im = arg;
	struct idem_job *jobs;
	uint64_t next_purge = now_mono_ms(), now;
	size_t purged, total = 0;
	bool stop, purge, more;

	/* Fail closed without the counts: the cap could not hold. */
	if (idem_count_all(im) == -1 && !atomic_exchange(&im->failed, true))
		log_error("idempotency: cannot count the stored keys; keyed "
		    "requests are refused until a restart");

	for (;;) {
		pthread_mutex_lock(&im->mu);
		while (im->qh == NULL && !im->stopping &&
		    (now = now_mono_ms()) < next_purge) {
			struct timespec ts;
			uint64_t until = next_purge;
			ts.tv_sec = (time_t)(until / 1000);
			ts.tv_nsec = (long)(until % 1000) * 1000000L;
			pthread_cond_timedwait(&im->cv, &im->mu, &ts);
		}
		jobs = im->qh;
		im->qh = im->qt = NULL;
		stop = im->stopping && jobs == NULL;
		pthread_mutex_unlock(&im->mu);
		if (stop)
			break;
		now = now_mono_ms();
		purge = now >= next_purge && !atomic_load(&im->failed);
		purged = 0;
		more = false;
		idem_round(im, jobs, purge, &purged, &more);
		if (purge) {
			total += purged;
			/* A full batch: the rest soon, after waiting jobs. */
			next_purge = now_mono_ms() + (more ? 10 : im->purge_ms);
			if (!more && total > 0) {
				log_info("idempotency: purged %zu expired "
				    "keys", total);
				total = 0;
			}
		}
	}
	return NULL;
}

/* ---- open / close ----------------------------------------------- */

static int
idem_check_mode(const char *dir, const char *name, char *err,
    size_t errlen)
{
	char p[4096];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (lstat(p, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "idempotency.path: %s: %s", p,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "idempotency.path: %s is %s", p,
		    S_ISLNK(st.st_mode) ? "a symbolic link; refusing to "
		    "follow it" : "not a regular file");
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "idempotency.path: %s is open to other "
		    "users (mode %03o); it holds personal data: chmod 600 it",
		    p, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}

/* ---- checking a store before use ------------------------------- */

/*
 * LMDB 0.9's on-disk meta page (lmdb/mdb.c, MDB_page + MDB_meta on an
 * LP64 system): a 16-byte page header (page number, pad, flags at 10),
 * then the meta: magic, version, fixed address, map size, the free and
 * main databases' records (48 bytes each; the free one's first four
 * bytes hold the page size), the last page used, the transaction id.
 * Pages 0 and 1 are the two metas; LMDB uses the one with the higher
 * transaction id.
 */
#define LMDB_PAGEHDR		16
#define LMDB_P_META		0x08
#define LMDB_MAGIC		0xbeefc0deu
#define LMDB_DATA_VERSION	1
#define LMDB_META_LEN		(8 + 8 + 8 + 2 * 48 + 8 + 8)
#define LMDB_OFF_PSIZE		24	/* mm_dbs[0].md_pad */
#define LMDB_OFF_DB(i)		(24 + 48 * (i))
#define LMDB_OFF_LASTPG		120
#define LMDB_OFF_TXNID		128
#define LMDB_MAX_DEPTH		32	/* CURSOR_STACK */
#define LMDB_MAXKEY		511	/* MDB_MAXKEYSIZE */
#define IDEM_DBNAME_MAX		LMDB_MAXKEY
#define IDEM_WALK_MAXDBS	64	/* named databases the walk opens */

_Static_assert(sizeof(size_t) == 8 && sizeof(void *) == 8,
    "the LMDB meta layout below is LP64's");

struct lmdb_meta {
	uint32_t	psize;
	uint64_t	last_pg, txnid;
	uint64_t	root[2];
	unsigned	depth[2];
};

static uint32_t
idem_get_ne32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
idem_get_ne64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Read one meta page at off: 0, or -1 with why. */
static int
idem_read_meta(int fd, off_t off, struct lmdb_meta *m, const char **why)
{
	unsigned char b[LMDB_PAGEHDR + LMDB_META_LEN];
	const unsigned char *mm = b + LMDB_PAGEHDR;
	uint16_t flags;
	ssize_t n;
	int i;

	n = pread(fd, b, sizeof(b), off);
	if (n != (ssize_t)sizeof(b)) {
		*why = "its header is cut short";
		return -1;
	}
	memcpy(&flags, b + 10, sizeof(flags));
	if (!(flags & LMDB_P_META) || idem_get_ne32(mm) != LMDB_MAGIC) {
		*why = "its header is not an LMDB header (zeroed or "
		    "overwritten)";
		return -1;
	}
	if (idem_get_ne32(mm + 4) != LMDB_DATA_VERSION) {
		*why = "its header has an unknown LMDB version";
		return -1;
	}
	m->psize = idem_get_ne32(mm + LMDB_OFF_PSIZE);
	m->last_pg = idem_get_ne64(mm + LMDB_OFF_LASTPG);
	m->txnid = idem_get_ne64(mm + LMDB_OFF_TXNID);
	for (i = 0; i < 2; i++) {
		uint16_t d;

		memcpy(&d, mm + LMDB_OFF_DB(i) + 6, sizeof(d));
		m->depth[i] = d;
		m->root[i] = idem_get_ne64(mm + LMDB_OFF_DB(i) + 40);
	}
	if (m->psize < 512 || m->psize > 65536 ||
	    (m->psize & (m->psize - 1)) != 0) {
		*why = "its header has an impossible page size";
		return -1;
	}
	return 0;
}

/*
 * The cheap half of the check, in this process: the data file is a
 * regular file whose two meta pages are sound and agree, and which is
 * as long as the newest meta says (its last page and both database
 * roots lie inside the file).  A store cut short would otherwise be
 * mapped and touched past its end: SIGBUS.  (The header's map size is
 * not checked: LMDB raises a short one itself.)  An empty or missing
 * file is a new store (LMDB initializes it): *last_pg is 0 then, else
 * the newest meta's last page.
 * 0 sound, 1 damaged (why set), -1 an error (why set).
 */
static int
idem_check_header(const char *file, const char **why, char *detail,
    size_t detlen, uint64_t *last_pg)
{
	struct lmdb_meta m0, m1, *m;
	struct stat st;
	uint64_t need, pages;
	int fd, i, r = 1;

	detail[0] = '\0';
	*last_pg = 0;
	if ((fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP) {
			*why = "it is a symbolic link";
			return 1;
		}
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		*why = strerror(errno);
		r = -1;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "it is not a regular file";
		goto out;
	}
	if (st.st_size == 0) {
		r = 0;
		goto out;
	}
	if (idem_read_meta(fd, 0, &m0, why) == -1 ||
	    idem_read_meta(fd, (off_t)m0.psize, &m1, why) == -1)
		goto out;
	if (m0.psize != m1.psize) {
		*why = "its two meta pages disagree on the page size";
		goto out;
	}
	m = m1.txnid > m0.txnid ? &m1 : &m0;
	pages = (uint64_t)st.st_size / m->psize;
	if (m->last_pg < 1 || m->last_pg >= UINT64_MAX / m->psize) {
		*why = "its header names an impossible last page";
		goto out;
	}
	need = (m->last_pg + 1) * m->psize;
	if ((uint64_t)st.st_size < need) {
		*why = "the file is shorter than its header says (truncated)";
		snprintf(detail, detlen, " (%lld bytes, the header needs "
		    "%llu)", (long long)st.st_size, (unsigned long long)need);
		goto out;
	}
	for (i = 0; i < 2; i++) {
		/* P_INVALID (all ones): an empty database. */
		if (m->root[i] != UINT64_MAX && (m->root[i] < 2 ||
		    m->root[i] > m->last_pg || m->root[i] >= pages)) {
			*why = "its header points outside the file";
			goto out;
		}
		if (m->depth[i] > LMDB_MAX_DEPTH) {
			*why = "its header has an impossible tree depth";
			goto out;
		}
	}
	*last_pg = m->last_pg;
	r = 0;
out:
	close(fd);
	return r;
}

/* Keys in LMDB's default order (mdb_cmp_memn): bytes, then length. */
static int
idem_keycmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c != 0 ? c : al < bl ? -1 : al > bl;
}

/*
 * Walk every entry of dbi, reading every byte of every key and value,
 * checking the keys come in order and that there are as many as the
 * database's record says.  kind: 0 the free list; 1 LMDB's main
 * database, the named databases' records, whose names go to names[]
 * (its count in *entries); 2 "main" and 3 "exp", whose records are
 * checked too; 4 any other named database (structure only, so a
 * database added later needs nothing here).  0, or an MDB error /
 * MDB_CORRUPTED.
 */
static int
idem_walk_dbi(MDB_txn *txn, MDB_dbi dbi, int kind, uint64_t last_pg,
    char (*names)[IDEM_DBNAME_MAX + 1], size_t *entries)
{
	unsigned char prev[LMDB_MAXKEY + 8];
	char ct[IDEM_CT_MAX + 1];
	struct idem_record rec;
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_val k, v;
	size_t plen = 0, count = 0, i, nul;
	volatile unsigned char sum = 0;
	const unsigned char *kp, *vp;
	uint64_t npg;
	int rc;

	*entries = 0;
	if ((rc = mdb_stat(txn, dbi, &ms)) != 0 ||
	    (rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		kp = k.mv_data;
		vp = v.mv_data;
		/* Touch it all: a page beyond the file faults here. */
		for (i = 0; i < k.mv_size; i++)
			sum ^= kp[i];
		for (i = 0; i < v.mv_size; i++)
			sum ^= vp[i];
		if (k.mv_size > sizeof(prev)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (kind == 0) {
			/* txnid -> count, then that many page numbers */
			if (k.mv_size != 8 || v.mv_size < 8 ||
			    (npg = idem_get_ne64(vp)) > v.mv_size / 8 - 1) {
				rc = MDB_CORRUPTED;
				break;
			}
			for (i = 1; i <= npg; i++)
				if (idem_get_ne64(vp + 8 * i) > last_pg)
					break;
			if (i <= npg || (count > 0 && idem_get_ne64(kp) <=
			    idem_get_ne64(prev))) {
				rc = MDB_CORRUPTED;
				break;
			}
		} else {
			if (count > 0 && idem_keycmp(prev, plen, kp,
			    k.mv_size) >= 0) {
				rc = MDB_CORRUPTED;
				break;
			}
		}
		if (kind == 2) {
			/* caller NUL key, both non-empty */
			for (nul = 0; nul < k.mv_size && kp[nul]; nul++)
				;
			if (k.mv_size > IDEM_DBKEY_MAX || nul == 0 ||
			    nul + 1 >= k.mv_size ||
			    memchr(kp + nul + 1, 0, k.mv_size - nul - 1) ||
			    idem_decode(vp, v.mv_size, &rec, ct,
			    sizeof(ct)) == -1) {
				rc = MDB_CORRUPTED;
				break;
			}
		} else if (kind == 1 && (v.mv_size != 48 ||
		    k.mv_size == 0 || k.mv_size > IDEM_DBNAME_MAX ||
		    memchr(kp, 0, k.mv_size) != NULL ||
		    *entries >= IDEM_WALK_MAXDBS)) {
			rc = MDB_CORRUPTED;
			break;
		} else if (kind == 3 && (k.mv_size <= 8 ||
		    k.mv_size > 8 + IDEM_DBKEY_MAX || v.mv_size != 0)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (kind == 1) {
			/* The named databases, to walk next. */
			memcpy(names[*entries], kp, k.mv_size);
			names[*entries][k.mv_size] = '\0';
			(*entries)++;
		}
		memcpy(prev, kp, k.mv_size);
		plen = k.mv_size;
		count++;
	}
	mdb_cursor_close(cur);
	(void)sum;
	if (rc != MDB_NOTFOUND)
		return rc == 0 ? MDB_CORRUPTED : rc;
	return count == ms.ms_entries ? 0 : MDB_CORRUPTED;
}

/*
 * The full walk, in the forked child: open the store read-only, walk
 * the free list, LMDB's own database and both of ours.  Nothing else
 * runs here (the child of a process with threads may only do what this
 * does: LMDB calls, write(2) and _exit).  Its exit status is 0 when
 * sound, 1 when damaged, 2 when it could not be opened for a reason
 * of the system's (errno), with a reason written to fd.
 */
static void
idem_walk_child(const char *path, int fd, uint64_t last_pg)
{
	static char names[IDEM_WALK_MAXDBS][IDEM_DBNAME_MAX + 1];
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	const char *what = "opening it";
	char msg[256];
	size_t n, ndb, i;
	int rc, kind, ours = 0;

	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, IDEM_WALK_MAXDBS)) != 0 ||
	    (rc = mdb_env_open(env, path, MDB_RDONLY, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
		goto fail;
	what = "reading its free-page list";
	if ((rc = idem_walk_dbi(txn, 0, 0, last_pg, NULL, &n)) != 0)
		goto fail;
	what = "reading its table of databases";
	if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
	    (rc = idem_walk_dbi(txn, dbi, 1, last_pg, names, &ndb)) != 0)
		goto fail;
	for (i = 0; i < ndb; i++) {
		what = "reading one of its databases";
		kind = strcmp(names[i], "main") == 0 ? 2 :
		    strcmp(names[i], "exp") == 0 ? 3 : 4;
		ours += kind != 4;
		if ((rc = mdb_dbi_open(txn, names[i], 0, &dbi)) != 0 ||
		    (rc = idem_walk_dbi(txn, dbi, kind, last_pg, NULL,
		    &n)) != 0)
			goto fail;
	}
	/* Both are made by the first open's commit, or neither is. */
	what = "reading its table of databases";
	if (ndb > 0 && ours != 2) {
		rc = MDB_CORRUPTED;
		goto fail;
	}
	_exit(0);
fail:
	snprintf(msg, sizeof(msg), "%s: %s", what,
	    rc == MDB_CORRUPTED ? "inconsistent data" : mdb_strerror(rc));
	(void)!write(fd, msg, strlen(msg));
	/* A system error opening it (permissions, memory) is no damage. */
	_exit(txn == NULL && rc > 0 ? 2 : 1);
}

int
idem_check_store(const char *path, char *err, size_t errlen)
{
	char file[4096], detail[96], msg[256];
	const char *why = NULL;
	uint64_t last_pg;
	ssize_t n;
	size_t got = 0;
	pid_t pid;
	int p[2], status, r;

	snprintf(file, sizeof(file), "%s/data.mdb", path);
	if ((r = idem_check_header(file, &why, detail, sizeof(detail),
	    &last_pg)) == -1) {
		snprintf(err, errlen, "idempotency.path: %s: %s", file, why);
		return -1;
	}
	if (r == 1)
		goto damaged;
	/* Missing or empty: LMDB starts a new store; nothing to walk. */
	if (last_pg == 0)
		return 0;

	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "idempotency: pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "idempotency: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		idem_walk_child(path, p[1], last_pg);
	}
	close(p[1]);
	while (got < sizeof(msg) - 1 && ((n = read(p[0], msg + got,
	    sizeof(msg) - 1 - got)) > 0 || (n == -1 && errno == EINTR)))
		if (n > 0)
			got += (size_t)n;
	msg[got] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			snprintf(err, errlen, "idempotency: waitpid: %s",
			    strerror(errno));
			return -1;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
		snprintf(err, errlen, "idempotency.path: %s: cannot check "
		    "it: %s", path, got > 0 ? msg : "open failed");
		return -1;
	}
	detail[0] = '\0';
	if (WIFSIGNALED(status)) {
		snprintf(detail, sizeof(detail), " (reading it killed the "
		    "checking process: %s)", strsignal(WTERMSIG(status)));
		why = "its pages point outside the file or hold garbage";
	} else
		why = got > 0 ? msg : "reading it failed";
damaged:
	snprintf(err, errlen, "idempotency.path: %s is damaged: %s%s. "
	    "cmgate will not use it. Move the folder %s aside (keep it for "
	    "inspection) and start again: a new, empty store is made; the "
	    "stored idempotency results are lost, so a retry of an old key "
	    "is processed anew (see README, \"The store\")", file, why,
	    detail, path);
	return -1;
}

/* Create the environment, its two databases, and learn its size. */
/*
 * The databases other modules keep in the store's environment (owners.c).
 * A read-only open of a store made before they existed finds none of
 * them: each is then marked absent (0, which LMDB never hands out for a
 * named database) and its readers see it empty.
 */
static int
idem_dbis_open(MDB_txn *txn, bool write, struct idem_dbis *d)
{
	static const char *const names[] = { "owners", "owned", "admin" };
	MDB_dbi *dbi[] = { &d->owners, &d->owned, &d->admin };
	size_t i;
	int rc;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rc = mdb_dbi_open(txn, names[i], write ? MDB_CREATE : 0,
		    dbi[i]);
		if (rc == MDB_NOTFOUND && !write)
			*dbi[i] = 0;
		else if (rc != 0)
			return rc;
	}
	return 0;
}

static int
idem_env_open_sized(const char *path, bool write, size_t initial,
    MDB_env **envp, MDB_dbi *dmain, MDB_dbi *dexp, struct idem_dbis *dbis,
    size_t *mapsize, char *err, size_t errlen)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_envinfo info;
	unsigned flags = write ? MDB_CREATE : 0;
	int rc, dead;

	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, initial)) != 0 ||
	    (rc = mdb_env_open(env, path, write ? 0 : MDB_RDONLY,
	    0600)) != 0) {
		snprintf(err, errlen, "idempotency.path: %s: %s", path,
		    mdb_strerror(rc));
		goto fail;
	}
	{
		/* LMDB opens the data file without O_CLOEXEC: a child (the
		 * seal command) must not inherit it read-write. */
		mdb_filehandle_t fd;
		int fl;

		if (mdb_env_get_fd(env, &fd) == 0 && fd != -1 &&
		    ((fl = fcntl(fd, F_GETFD)) == -1 ||
		    fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == -1)) {
			snprintf(err, errlen, "idempotency.path: %s: "
			    "close-on-exec: %s", path, strerror(errno));
			goto fail;
		}
	}
	(void)mdb_reader_check(env, &dead);
	if ((rc = mdb_txn_begin(env, NULL, write ? 0 : MDB_RDONLY,
	    &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "main", flags, dmain)) != 0 ||
	    (rc = mdb_dbi_open(txn, "exp", flags, dexp)) != 0 ||
	    (rc = idem_dbis_open(txn, write, dbis)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		snprintf(err, errlen, "idempotency.path: %s: %s", path,
		    rc == MDB_NOTFOUND ? "not a cmgate idempotency store" :
		    mdb_strerror(rc));
		goto fail;
	}
	if (mdb_env_info(env, &info) == 0)
		*mapsize = info.me_mapsize;
	*envp = env;
	return 0;
fail:
	if (txn)
		mdb_txn_abort(txn);
	if (env)
		mdb_env_close(env);
	return -1;
}

static int
idem_env_open(const char *path, bool write, MDB_env **envp, MDB_dbi *dmain,
    MDB_dbi *dexp, struct idem_dbis *dbis, size_t *mapsize, char *err,
    size_t errlen)
{
	return idem_env_open_sized(path, write, IDEM_MAP_INITIAL, envp, dmain,
	    dexp, dbis, mapsize, err, errlen);
}

/*
 * What idem_open checks before it creates or opens anything: the store
 * is a folder (not a symbolic link: the store would go wherever it
 * points) or can be made in its parent, and its files are regular
 * files open to no one else.  cmgate -t runs it, and idem_open first.
 */
int
idem_check(const struct config *cfg, char *err, size_t errlen)
{
	const char *path = cfg->idempotency.path;
	struct stat st;
	char parent[4096], *slash;

	if (path == NULL) {
		snprintf(err, errlen, "idempotency.path is not set");
		return -1;
	}
	if (lstat(path, &st) == -1) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "idempotency.path: %s: %s", path,
			    strerror(errno));
			return -1;
		}
		snprintf(parent, sizeof(parent), "%s", path);
		if ((slash = strrchr(parent, '/')) == NULL)
			snprintf(parent, sizeof(parent), ".");
		else if (slash == parent)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (access(parent, W_OK | X_OK) == -1) {
			snprintf(err, errlen, "idempotency.path: cannot create "
			    "%s in %s: %s", path, parent, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "idempotency.path: %s is a symbolic "
		    "link; refusing to follow it (give the real path)", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "idempotency.path: %s: not a folder",
		    path);
		return -1;
	}
	if (idem_check_mode(path, "data.mdb", err, errlen) == -1 ||
	    idem_check_mode(path, "lock.mdb", err, errlen) == -1 ||
	    idem_check_mode(path, "cmgate.lock", err, errlen) == -1)
		return -1;
	return 0;
}

/* A size from the environment (tests), in whole 64 KiB, or def. */
static size_t
idem_env_bytes(const char *name, size_t def)
{
	const char *s = getenv(name);
	unsigned long long v;

	if (s == NULL || (v = strtoull(s, NULL, 10)) < 65536)
		return def;
	return (size_t)(v / 65536 * 65536);
}

struct idem *
idem_open(const struct config *cfg, char *err, size_t errlen)
{
	const char *path = cfg->idempotency.path, *s;
	struct idem *im;
	pthread_condattr_t ca;
	sigset_t all, old;
	char lp[4096];
	struct stat st;
	size_t initial;

	if ((im = calloc(1, sizeof(*im))) == NULL) {
		snprintf(err, errlen, "idempotency: out of memory");
		return NULL;
	}
	im->lockfd = -1;
	atomic_init(&im->failed, false);
	pthread_mutex_init(&im->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&im->cv, &ca);
	pthread_condattr_destroy(&ca);
	im->purge_ms = IDEM_PURGE_MS;
	im->map_max = IDEM_MAP_MAX;
	/* Test hooks: a shorter purge period, a small map. */
	if ((s = getenv("CMGATE_IDEM_PURGE_MS")) != NULL && atol(s) > 0)
		im->purge_ms = (uint64_t)atol(s);
	initial = idem_env_bytes("CMGATE_IDEM_MAP_BYTES", IDEM_MAP_INITIAL);
	im->map_max = idem_env_bytes("CMGATE_IDEM_MAP_MAX_BYTES", IDEM_MAP_MAX);

	if (idem_check(cfg, err, errlen) == -1)
		goto fail;
	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "idempotency.path: %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "idempotency.path: %s: not a folder",
		    path);
		goto fail;
	}
	/* One process per store: the in-flight set is in memory. */
	snprintf(lp, sizeof(lp), "%s/cmgate.lock", path);
	if ((im->lockfd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "idempotency.path: %s: %s", lp,
		    strerror(errno));
		goto fail;
	}
	if (flock(im->lockfd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "idempotency.path: %s is in use by "
		    "another cmgate process", path);
		goto fail;
	}
	if (idem_check_mode(path, "data.mdb", err, errlen) == -1 ||
	    idem_check_mode(path, "lock.mdb", err, errlen) == -1)
		goto fail;
	/* Before the map: a damaged store must not take the gateway down. */
	if (idem_check_store(path, err, errlen) == -1)
		goto fail;
	if (idem_env_open_sized(path, true, initial, &im->env, &im->dbi_main,
	    &im->dbi_exp, &im->dbis, &im->mapsize, err, errlen) == -1)
		goto fail;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	errno = pthread_create(&im->thread, NULL, idem_main, im);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (errno != 0) {
		snprintf(err, errlen, "idempotency: thread: %s",
		    strerror(errno));
		goto fail;
	}
	im->started = true;
	return im;
fail:
	idem_close(im);
	return NULL;
}

void
idem_close(struct idem *im)
{
	if (im == NULL)
		return;
	if (im->started) {
		pthread_mutex_lock(&im->mu);
		im->stopping = true;
		pthread_cond_signal(&im->cv);
		pthread_mutex_unlock(&im->mu);
		pthread_join(im->thread, NULL);
	}
	if (im->env)
		mdb_env_close(im->env);
	if (im->lockfd != -1)
		close(im->lockfd);	/* drops the flock */
	/* Claims left in the set belong to requests cut off by the exit. */
	tdestroy(im->inflight, free);
	free(im->counts);
	pthread_cond_destroy(&im->cv);
	pthread_mutex_destroy(&im->mu);
	free(im);
}

bool
idem_healthy(const struct idem *im)
{
	return im != NULL && !atomic_load(&im->failed);
}

/* ---- direct access for cmgate-idem ------------------------------ */

struct idem_db *
idem_db_open(const char *path, bool write, char *err, size_t errlen)
{
	struct idem_db *db;
	size_t mapsize;
	struct stat st;

	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: no idempotency store here", path);
		return NULL;
	}
	if (idem_check_store(path, err, errlen) == -1)
		return NULL;
	if ((db = calloc(1, sizeof(*db))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	db->write = write;
	if (idem_env_open(path, write, &db->env, &db->dbi_main, &db->dbi_exp,
	    &db->dbis, &mapsize, err, errlen) == -1) {
		free(db);
		return NULL;
	}
	return db;
}

void
idem_db_close(struct idem_db *db)
{
	if (db == NULL)
		return;
	mdb_env_close(db->env);
	free(db);
}

static void
idem_db_emit(const MDB_val *k, const MDB_val *v, idem_db_fn fn, void *arg)
{
	char key[IDEM_DBKEY_MAX + 1], ct[IDEM_CT_MAX + 1];
	struct idem_record rec;
	size_t cl;

	if (k->mv_size > IDEM_DBKEY_MAX)
		return;
	memcpy(key, k->mv_data, k->mv_size);
	key[k->mv_size] = '\0';
	cl = strlen(key);
	if (cl >= k->mv_size || idem_decode(v->mv_data, v->mv_size, &rec, ct,
	    sizeof(ct)) == -1)
		return;
	fn(key, key + cl + 1, &rec, arg);
}

int
idem_db_list(struct idem_db *db, idem_db_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if (mdb_cursor_open(txn, db->dbi_main, &cur) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		idem_db_emit(&k, &v, fn, arg);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : -1;
}

int
idem_db_get(struct idem_db *db, const char *caller, const char *key,
    idem_db_fn fn, void *arg)
{
	char kb[IDEM_DBKEY_MAX + 1];
	MDB_txn *txn;
	MDB_val k, v;
	int klen, rc;

	if ((klen = idem_dbkey(caller, key, kb)) == -1)
		return 0;
	if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	k.mv_data = kb;
	k.mv_size = (size_t)klen;
	rc = mdb_get(txn, db->dbi_main, &k, &v);
	if (rc == 0)
		idem_db_emit(&k, &v, fn, arg);
	mdb_txn_abort(txn);
	return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
}

/* The running gateway's next lookup sees the deletion: every lookup is
 * a fresh read transaction. */
int
idem_db_forget(struct idem_db *db, const char *caller, const char *key)
{
	unsigned char eb[8 + IDEM_DBKEY_MAX];
	char kb[IDEM_DBKEY_MAX + 1];
	MDB_txn *txn;
	MDB_val k, v, ek;
	uint64_t exp = 0;
	int klen, rc;

	if (!db->write || (klen = idem_dbkey(caller, key, kb)) == -1)
		return db->write ? 0 : -1;
	if (mdb_txn_begin(db->env, NULL, 0, &txn) != 0)
		return -1;
	k.mv_data = kb;
	k.mv_size = (size_t)klen;
	if ((rc = mdb_get(txn, db->dbi_main, &k, &v)) != 0) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? 0 : -1;
	}
	if (v.mv_size >= IDEM_HDR_LEN)
		exp = idem_get_le((const unsigned char *)v.mv_data + 16, 8);
	if ((rc = mdb_del(txn, db->dbi_main, &k, NULL)) != 0)
		goto fail;
	idem_put_be64(eb, exp);
	memcpy(eb + 8, kb, (size_t)klen);
	ek.mv_data = eb;
	ek.mv_size = 8 + (size_t)klen;
	rc = mdb_del(txn, db->dbi_exp, &ek, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto fail;
	if (mdb_txn_commit(txn) != 0)
		return -1;
	return 1;
fail:
	mdb_txn_abort(txn);
	return -1;
}

int
idem_db_txn(struct idem_db *db, bool write, idem_txn_fn work, void *arg)
{
	struct idem_txn t;
	MDB_txn *txn;
	int rc;

	if (write && !db->write)
		return -1;
	if (mdb_txn_begin(db->env, NULL, write ? 0 : MDB_RDONLY, &txn) != 0)
		return -1;
	t.txn = txn;
	t.dbis = &db->dbis;
	rc = work(&t, arg);
	if (rc < 0 || !write) {
		mdb_txn_abort(txn);
		return rc < -1 ? -1 : rc;
	}
	return mdb_txn_commit(txn) == 0 ? rc : -1;	/* fdatasync */
}

/* For idem_open's callers at startup (no thread running work yet). */
int
idem_run_now(struct idem *im, bool write, idem_txn_fn work, void *arg)
{
	struct idem_db db = { im->env, im->dbi_main, im->dbi_exp, im->dbis,
	    write };

	return idem_db_txn(&db, write, work, arg);
}
