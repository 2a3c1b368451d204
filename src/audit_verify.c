/*
 * audit_verify.c: the verifier of the audit log, fed line by line.
 *
 * cmgate-audit verify and report run it on a whole log; the gateway
 * runs it, in repair mode, on the tail after the last seal when it
 * opens a log (audit_recover.c).  It checks each line's MAC under its
 * epoch's key, the chain (seq and prev), the epochs and their seals,
 * and names what is wrong (enum afmt_kind) with the least it can
 * prove: a bad run of lines is held until the next good record says
 * whether it was modified, forged or a torn end.  Its key work is
 * bounded (AFMT_STEP_BUDGET) whatever a hostile file claims.  It sees
 * the format only through audit_format.h.
 */
#include "audit_format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const unsigned char afmt_zero_hash[AFMT_HASH_LEN];

static const char *const afmt_kind_names[] = {
	"MODIFIED", "MISSING", "REORDERED", "DUPLICATE", "FORGED",
	"SEAL_MISSING", "EPOCH_VIOLATION", "TORN_TAIL", "TRUNCATED", "FORK",
	"OPEN", "RECOVER",
};

const char *
afmt_kind_name(enum afmt_kind k)
{
	return afmt_kind_names[k];
}

bool
afmt_kind_is_failure(enum afmt_kind k)
{
	return k != AFMT_OPEN && k != AFMT_RECOVER;
}

/* A line that did not verify, waiting for the next good record to say
 * what it was (modified, forged, torn). */
struct afmt_bad {
	const char	*file;
	uint64_t	 line, offset, len;
	bool		 complete;	/* parsed as a record */
	uint64_t	 seq;		/* as parsed, when complete */
};

#define AFMT_BAD_KEEP	64
#define AFMT_MAX_STEPS	(1u << 24)	/* key steps for one lookup */
/*
 * Key steps a verifier may spend, in all, on lines that need a key the
 * chain has not reached (an epoch ahead of it, or a key derived afresh
 * from the base): enough to find the first record of a log whose
 * earlier files are not given (a year of 60 s epochs) and to name a
 * re-MAC'd record, bounded against a file of forged lines whatever
 * epochs they claim (0.3 to 0.5 s at 0.3 to 0.45 us a step).
 */
#define AFMT_STEP_BUDGET (1u << 20)
/*
 * How far ahead of the chain's epoch a record may claim to be, on top
 * of the epochs the time since the last verified record allows: epochs
 * that end early (a stop, a rotation) are not bound to the clock.
 */
#define AFMT_EPOCH_SLACK 1024
#define AFMT_MAX_MISSING 65536

struct afmt_range {
	uint64_t	 a, b;
	const char	*file;
	uint64_t	 line, offset;
};

struct afmt_anchor {
	uint64_t	 seq;
	unsigned char	 head[AFMT_HASH_LEN];
	bool		 checked;
};

struct afmt_vfy {
	afmt_finding_cb	 cb;
	void		*cbarg;
	afmt_record_cb	 rcb;
	void		*rcbarg;
	bool		 repair;

	struct afmt_key	 base;		/* as given; never moved */
	struct afmt_key	 cur;		/* at epoch, when set */
	struct afmt_key	 scratch;
	uint64_t	 budget;	/* AFMT_STEP_BUDGET, spent */
	/* Time of the last linked record (0: none yet) and the epoch
	 * length a verified start record gave (0: not known). */
	int64_t		 last_time;
	uint64_t	 epoch_s;

	const char	*file;
	uint64_t	 lineno;

	bool		 started;
	uint64_t	 exp;
	unsigned char	 head[AFMT_HASH_LEN];
	uint64_t	 epoch;
	char		 log_id[AFMT_LOGID_HEX + 1];
	bool		 have_log;
	bool		 suspect;	/* last accepted record is reported */

	/* A linked record whose epoch jumped without a seal: resolved by
	 * the next record (isolated re-MAC, or seals really missing). */
	bool		 jump;
	uint64_t	 jump_seq, jump_from, jump_to, jump_line, jump_off;
	const char	*jump_file;
	bool		 jump_seal;

	struct afmt_bad	 bad[AFMT_BAD_KEEP];
	size_t		 nbad;		/* may exceed AFMT_BAD_KEEP */
	bool		 bad_torn;	/* some bad line is not a record */

	struct afmt_range *miss;
	size_t		 nmiss, capmiss;

	uint64_t	*hashes;	/* first 8 bytes of each line's hash */
	uint64_t	 hbase;
	size_t		 hn, hcap;

	struct afmt_anchor *anchors;
	size_t		 nanchors;

	struct afmt_idset open;
	struct afmt_summary sum;
};

static void
afmt_report(struct afmt_vfy *v, enum afmt_kind kind, uint64_t seq,
    uint64_t seq_end, const char *file, uint64_t line, uint64_t off,
    const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static void afmt_vfy_set_epoch(struct afmt_vfy *, uint64_t);

static void
afmt_report(struct afmt_vfy *v, enum afmt_kind kind, uint64_t seq,
    uint64_t seq_end, const char *file, uint64_t line, uint64_t off,
    const char *fmt, ...)
{
	struct afmt_finding f;
	va_list ap;

	memset(&f, 0, sizeof(f));
	f.kind = kind;
	f.seq = seq;
	f.seq_end = seq_end ? seq_end : seq;
	f.file = file;
	f.line = line;
	f.offset = off;
	va_start(ap, fmt);
	vsnprintf(f.detail, sizeof(f.detail), fmt, ap);
	va_end(ap);
	if (afmt_kind_is_failure(kind))
		v->sum.failures++;
	else
		v->sum.infos++;
	if (v->cb)
		v->cb(&f, v->cbarg);
}

struct afmt_vfy *
afmt_vfy_new(const unsigned char key[AFMT_KEY_LEN], uint64_t key_epoch,
    afmt_finding_cb cb, void *arg)
{
	struct afmt_vfy *v;

	if (afmt_init() == -1 || (v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->cb = cb;
	v->cbarg = arg;
	v->file = "";
	v->budget = AFMT_STEP_BUDGET;
	if (afmt_key_set(&v->base, key, key_epoch) == -1) {
		afmt_vfy_free(v);
		return NULL;
	}
	return v;
}

void
afmt_vfy_free(struct afmt_vfy *v)
{
	if (v == NULL)
		return;
	afmt_key_wipe(&v->base);
	afmt_key_wipe(&v->cur);
	afmt_key_wipe(&v->scratch);
	free(v->miss);
	free(v->hashes);
	free(v->anchors);
	afmt_idset_free(&v->open);
	free(v);
}

void
afmt_vfy_repair_mode(struct afmt_vfy *v, bool on)
{
	v->repair = on;
}

void
afmt_vfy_on_record(struct afmt_vfy *v, afmt_record_cb cb, void *arg)
{
	v->rcb = cb;
	v->rcbarg = arg;
}

void
afmt_vfy_expect(struct afmt_vfy *v, uint64_t seq,
    const unsigned char head[AFMT_HASH_LEN], uint64_t epoch,
    const char *log_id)
{
	v->started = true;
	v->exp = seq;
	memcpy(v->head, head, AFMT_HASH_LEN);
	v->epoch = epoch;
	snprintf(v->log_id, sizeof(v->log_id), "%s", log_id);
	v->have_log = true;
	v->sum.epoch = epoch;
	v->hbase = seq;
	afmt_vfy_set_epoch(v, epoch);
}

int
afmt_vfy_anchor(struct afmt_vfy *v, uint64_t seq,
    const unsigned char head[AFMT_HASH_LEN])
{
	struct afmt_anchor *n;

	n = realloc(v->anchors, (v->nanchors + 1) * sizeof(*n));
	if (n == NULL)
		return -1;
	v->anchors = n;
	n[v->nanchors].seq = seq;
	memcpy(n[v->nanchors].head, head, AFMT_HASH_LEN);
	n[v->nanchors].checked = false;
	v->nanchors++;
	return 0;
}

void
afmt_vfy_file(struct afmt_vfy *v, const char *name)
{
	v->file = name;
	v->lineno = 0;
}

/*
 * The key of epoch e, derived from the current or the base key; NULL
 * when it cannot be: earlier than the base, later than max_epoch (what
 * the chain can justify, see afmt_vfy_reach), or more key steps than
 * the budget has left.  One step from a key already held is free (the
 * chain moving on); any longer derivation is paid from the budget, so
 * however many lines a file holds and whatever epochs they claim, the
 * key work of a whole run stays under AFMT_STEP_BUDGET steps.
 */
static struct afmt_key *
afmt_vfy_key(struct afmt_vfy *v, uint64_t e, const char *log_id,
    uint64_t max_epoch)
{
	struct afmt_key *from;

	if (v->cur.set && v->cur.epoch == e)
		return &v->cur;
	if (v->base.epoch == e)
		return &v->base;
	if (v->scratch.set && v->scratch.epoch == e)
		return &v->scratch;
	if (e < v->base.epoch || e > max_epoch ||
	    e - v->base.epoch > AFMT_MAX_STEPS)
		return NULL;
	/* Step from the nearest key below e. */
	from = &v->base;
	if (v->cur.set && v->cur.epoch < e && v->cur.epoch > from->epoch)
		from = &v->cur;
	if (v->scratch.set && v->scratch.epoch < e &&
	    v->scratch.epoch > from->epoch)
		from = &v->scratch;
	if (e - from->epoch > 1) {
		if (e - from->epoch > v->budget)
			return NULL;
		v->budget -= e - from->epoch;
	}
	if (from != &v->scratch && afmt_key_copy(&v->scratch, from) == -1)
		return NULL;
	if (afmt_key_seek(&v->scratch, log_id, e, e - v->scratch.epoch) == -1) {
		afmt_key_wipe(&v->scratch);
		return NULL;
	}
	return &v->scratch;
}

/* Seconds since the epoch of a record's ts ("YYYY-MM-DDTHH:MM:SS..."),
 * 0 when it does not read as one. */
static int64_t
afmt_ts_time(const char *ts)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1 || t < 0)
		return 0;
	return (int64_t)t;
}

/*
 * The latest epoch the chain can justify for record r, so that a line
 * claiming a far epoch costs no key work.  Every epoch ends with a
 * seal, a record of its own, so an epoch is below its seq.  After a
 * linked record, the epoch can only have moved on by one per seal
 * since: at most one per epoch_s of the time elapsed between that
 * record and now (its seals come from the epoch timer), plus
 * AFMT_EPOCH_SLACK for epochs ended early (stops, rotations).  The
 * seq a line claims is not evidence: the line is not verified yet.
 */
static uint64_t
afmt_vfy_reach(const struct afmt_vfy *v, const struct afmt_rec *r)
{
	uint64_t reach, elapsed = 0;
	int64_t now;

	if (r->seq == 0)
		return 0;
	if (!v->started)
		return r->seq - 1;
	if (v->last_time > 0 && (now = (int64_t)time(NULL)) > v->last_time)
		elapsed = (uint64_t)(now - v->last_time) /
		    (v->epoch_s ? v->epoch_s : 1);
	reach = v->epoch + 1 + AFMT_EPOCH_SLACK;
	reach = elapsed > UINT64_MAX - reach ? UINT64_MAX : reach + elapsed;
	return reach < r->seq - 1 ? reach : r->seq - 1;
}

/* Make the current key the key of epoch e. */
static void
afmt_vfy_set_epoch(struct afmt_vfy *v, uint64_t e)
{
	v->epoch = e;
	if (v->cur.set && v->cur.epoch == e)
		return;
	if (e == v->base.epoch) {
		/* afmt_vfy_key() answers with the base key itself. */
		afmt_key_wipe(&v->cur);
		return;
	}
	if (v->scratch.set && v->scratch.epoch == e) {
		struct afmt_key t = v->cur;
		v->cur = v->scratch;
		v->scratch = t;
		return;
	}
	if (!v->cur.set || v->cur.epoch > e) {
		if (afmt_key_copy(&v->cur, &v->base) == -1)
			return;
	}
	if (afmt_key_seek(&v->cur, v->log_id, e, AFMT_MAX_STEPS) == -1)
		afmt_key_wipe(&v->cur);
}

static void
afmt_vfy_push_hash(struct afmt_vfy *v, uint64_t seq,
    const unsigned char h[AFMT_HASH_LEN])
{
	uint64_t x = 0;
	size_t i, idx;

	if (v->hn == 0 && v->hcap == 0)
		v->hbase = seq;
	if (seq < v->hbase)
		return;
	idx = (size_t)(seq - v->hbase);
	if (idx > (size_t)1 << 30)
		return;
	if (idx >= v->hcap) {
		size_t ncap = v->hcap ? v->hcap : 1024;
		uint64_t *n;
		while (ncap <= idx)
			ncap *= 2;
		if ((n = realloc(v->hashes, ncap * sizeof(*n))) == NULL)
			return;
		memset(n + v->hcap, 0, (ncap - v->hcap) * sizeof(*n));
		v->hashes = n;
		v->hcap = ncap;
	}
	for (i = 0; i < 8; i++)
		x = x << 8 | h[i];
	v->hashes[idx] = x | 1;		/* never 0: 0 means "not seen" */
	if (idx >= v->hn)
		v->hn = idx + 1;
}

static bool
afmt_vfy_seen(const struct afmt_vfy *v, uint64_t seq,
    const unsigned char h[AFMT_HASH_LEN], bool *same)
{
	uint64_t x = 0;
	size_t i;

	if (seq < v->hbase || seq - v->hbase >= v->hn ||
	    v->hashes[seq - v->hbase] == 0)
		return false;
	for (i = 0; i < 8; i++)
		x = x << 8 | h[i];
	*same = v->hashes[seq - v->hbase] == (x | 1);
	return true;
}

static void
afmt_vfy_add_missing(struct afmt_vfy *v, uint64_t a, uint64_t b,
    uint64_t line, uint64_t off)
{
	struct afmt_range *n;

	if (v->nmiss == AFMT_MAX_MISSING) {
		afmt_report(v, AFMT_MISSING, a, b, v->file, line, off,
		    "records absent before this line");
		return;
	}
	if (v->nmiss == v->capmiss) {
		size_t ncap = v->capmiss ? v->capmiss * 2 : 16;
		if ((n = realloc(v->miss, ncap * sizeof(*n))) == NULL) {
			afmt_report(v, AFMT_MISSING, a, b, v->file, line, off,
			    "records absent before this line");
			return;
		}
		v->miss = n;
		v->capmiss = ncap;
	}
	n = &v->miss[v->nmiss++];
	n->a = a;
	n->b = b;
	n->file = v->file;
	n->line = line;
	n->offset = off;
}

/* A record that comes back later than its place was only reordered. */
static bool
afmt_vfy_take_missing(struct afmt_vfy *v, uint64_t s)
{
	size_t i;

	for (i = 0; i < v->nmiss; i++) {
		struct afmt_range *r = &v->miss[i];
		if (s < r->a || s > r->b)
			continue;
		if (r->a == r->b) {
			v->miss[i] = v->miss[--v->nmiss];
		} else if (s == r->a)
			r->a++;
		else if (s == r->b)
			r->b--;
		else {
			struct afmt_range tail = *r;
			tail.a = s + 1;
			r->b = s - 1;
			afmt_vfy_add_missing(v, tail.a, tail.b, tail.line,
			    tail.offset);
		}
		return true;
	}
	return false;
}

static void
afmt_vfy_bad_line(struct afmt_vfy *v, const char *line, size_t len,
    uint64_t off, bool parsed, uint64_t seq)
{
	if (v->nbad < AFMT_BAD_KEEP) {
		struct afmt_bad *b = &v->bad[v->nbad];
		b->file = v->file;
		b->line = v->lineno;
		b->offset = off;
		b->len = len;
		b->complete = parsed;
		b->seq = parsed ? seq : 0;
	}
	if (!parsed || len == 0 || line[len - 1] != '\n' ||
	    memchr(line, '\0', len) != NULL)
		v->bad_torn = true;
	v->nbad++;
	v->sum.mac_fail_lines++;
}

/* A good record arrived after a run of bad lines ending at seq s-1. */
static void
afmt_vfy_resolve_bad(struct afmt_vfy *v, uint64_t s, uint64_t line,
    uint64_t off)
{
	size_t i;

	if (v->nbad == 0) {
		if (s > v->exp)
			afmt_vfy_add_missing(v, v->exp, s - 1, line, off);
		return;
	}
	if (s == v->exp) {
		/* Nothing is absent from the chain: the bad lines were
		 * added to it. */
		for (i = 0; i < v->nbad && i < AFMT_BAD_KEEP; i++)
			afmt_report(v, AFMT_FORGED, 0, 0, v->bad[i].file,
			    v->bad[i].line, v->bad[i].offset,
			    "a line that is not part of the chain "
			    "(bad MAC, foreign key or log)");
	} else {
		afmt_report(v, AFMT_MODIFIED, v->exp, s - 1, v->bad[0].file,
		    v->bad[0].line, v->bad[0].offset,
		    "%zu line(s) in place of seq %llu..%llu fail verification",
		    v->nbad, (unsigned long long)v->exp,
		    (unsigned long long)(s - 1));
	}
	v->nbad = 0;
	v->bad_torn = false;
}

static void
afmt_vfy_resolve_jump(struct afmt_vfy *v, uint64_t next_epoch, bool at_end)
{
	if (!v->jump)
		return;
	v->jump = false;
	if (!at_end && next_epoch == v->jump_from) {
		/* The chain goes on in the old epoch: one record was
		 * re-MAC'd with a later epoch's key. */
		afmt_report(v, AFMT_EPOCH_VIOLATION, v->jump_seq, 0,
		    v->jump_file, v->jump_line, v->jump_off,
		    "record claims epoch %llu inside epoch %llu "
		    "(MAC'd with a later epoch's key)",
		    (unsigned long long)v->jump_to,
		    (unsigned long long)v->jump_from);
		return;
	}
	afmt_report(v, AFMT_SEAL_MISSING, v->jump_seq, 0, v->jump_file,
	    v->jump_line, v->jump_off,
	    "no seal for epoch %llu..%llu before this record (epoch %llu)",
	    (unsigned long long)v->jump_from,
	    (unsigned long long)(v->jump_to - 1),
	    (unsigned long long)v->jump_to);
	afmt_vfy_set_epoch(v, v->jump_to + (v->jump_seal ? 1 : 0));
	if (v->jump_seal) {
		v->sum.seals++;
		v->sum.unsealed = 0;
		v->sum.epoch_records = 0;
	}
}

/* A MAC-valid record whose seq is behind the chain. */
static void
afmt_vfy_old(struct afmt_vfy *v, const struct afmt_rec *r,
    const unsigned char h[AFMT_HASH_LEN], uint64_t off)
{
	bool same = false;

	if (afmt_vfy_take_missing(v, r->seq))
		afmt_report(v, AFMT_REORDERED, r->seq, 0, v->file, v->lineno,
		    off, "seq %llu appears after seq %llu",
		    (unsigned long long)r->seq,
		    (unsigned long long)(v->exp - 1));
	else if (afmt_vfy_seen(v, r->seq, h, &same) && same)
		afmt_report(v, AFMT_DUPLICATE, r->seq, 0, v->file, v->lineno,
		    off, "a second copy of seq %llu",
		    (unsigned long long)r->seq);
	else
		afmt_report(v, AFMT_FORGED, r->seq, 0, v->file, v->lineno, off,
		    "a second, different record for seq %llu with a valid MAC",
		    (unsigned long long)r->seq);
}

static void
afmt_vfy_accept(struct afmt_vfy *v, const struct afmt_rec *r,
    const unsigned char h[AFMT_HASH_LEN], uint64_t off)
{
	size_t i;
	bool seal = strcmp(r->type, "seal") == 0;

	v->exp = r->seq + 1;
	memcpy(v->head, h, AFMT_HASH_LEN);
	afmt_vfy_push_hash(v, r->seq, h);

	if (v->sum.records == 0) {
		v->sum.first_seq = r->seq;
		memcpy(v->sum.first_ts, r->ts, sizeof(r->ts));
		v->sum.chain_from_start = r->seq == 1;
	}
	v->sum.records++;
	v->sum.last_seq = r->seq;
	memcpy(v->sum.last_ts, r->ts, sizeof(r->ts));
	v->last_time = afmt_ts_time(r->ts);
	if (strcmp(r->type, "start") == 0) {
		uint64_t es = 0;
		if (afmt_field_u64(r->fields, r->flen, "epoch_s", &es) == 0 &&
		    es > 0)
			v->epoch_s = es;
	}
	v->sum.last_is_seal = false;

	if (!v->jump) {
		if (seal && r->epoch == v->epoch) {
			v->sum.seals++;
			v->sum.last_seal_seq = r->seq;
			memcpy(v->sum.last_seal_ts, r->ts, sizeof(r->ts));
			v->sum.unsealed = 0;
			v->sum.epoch_records = 0;
			v->sum.last_is_seal = true;
			afmt_vfy_set_epoch(v, v->epoch + 1);
		} else {
			if (v->sum.unsealed == 0)
				memcpy(v->sum.unsealed_from_ts, r->ts,
				    sizeof(r->ts));
			v->sum.unsealed++;
			v->sum.epoch_records++;
		}
	}
	afmt_idset_track(&v->open, r->type, r->fields, r->flen, r->seq);
	if (strcmp(r->type, "recover") == 0) {
		uint64_t bytes = 0;
		(void)afmt_field_u64(r->fields, r->flen, "bytes", &bytes);
		afmt_report(v, AFMT_RECOVER, r->seq, 0, v->file, v->lineno, off,
		    "the gateway cut a torn tail of %llu bytes",
		    (unsigned long long)bytes);
	}
	for (i = 0; i < v->nanchors; i++) {
		struct afmt_anchor *a = &v->anchors[i];
		if (a->seq != r->seq || a->checked)
			continue;
		a->checked = true;
		if (memcmp(a->head, h, AFMT_HASH_LEN) != 0)
			afmt_report(v, AFMT_FORK, r->seq, 0, v->file, v->lineno,
			    off, "seq %llu differs from the anchored head",
			    (unsigned long long)r->seq);
	}
	if (v->rcb)
		v->rcb(r, v->suspect, v->rcbarg);
}

/* First good record: set up the chain it begins. */
static void
afmt_vfy_begin(struct afmt_vfy *v, const struct afmt_rec *r)
{
	uint64_t last = 0;

	v->started = true;
	v->epoch = r->epoch;
	if (v->nbad > 0 && v->bad[0].complete && v->bad[0].seq < r->seq)
		v->exp = v->bad[0].seq;	/* the damaged line still says */
	else if (v->nbad > 0)
		v->exp = r->seq > v->nbad ? r->seq - v->nbad : 1;
	else if (r->seq == 1)
		v->exp = 1;
	else if (strcmp(r->type, "start") == 0 &&
	    afmt_field_u64(r->fields, r->flen, "last_seq", &last) == 0 &&
	    last + 1 == r->seq)
		v->exp = r->seq;	/* earlier files not given */
	else
		v->exp = 1;
	/* Whatever precedes the first record cannot be checked: take its
	 * prev as the head, except at the genesis. */
	if (v->exp == 1 && r->seq == 1)
		memset(v->head, 0, AFMT_HASH_LEN);
	else
		memcpy(v->head, r->prev, AFMT_HASH_LEN);
	v->hbase = v->exp;
}

void
afmt_vfy_line(struct afmt_vfy *v, const char *line, size_t len, uint64_t off)
{
	struct afmt_rec r;
	struct afmt_key *key = NULL;
	unsigned char h[AFMT_HASH_LEN];
	uint64_t gap, reach;
	bool parsed, first = false;

	v->lineno++;
	v->sum.lines++;
	parsed = afmt_parse(line, len, &r) == 0;
	if (parsed && (!v->have_log || strcmp(r.log_id, v->log_id) == 0) &&
	    r.epoch < r.seq) {
		reach = afmt_vfy_reach(v, &r);
		if (r.epoch > reach && v->started) {
			/* Reported now, with no key work: a file of such
			 * lines costs what reading it costs. */
			v->sum.mac_fail_lines++;
			afmt_report(v, AFMT_EPOCH_VIOLATION, 0, 0, v->file,
			    v->lineno, off, "a line claims epoch %llu, past "
			    "the epoch %llu the chain can reach; not part of "
			    "the chain", (unsigned long long)r.epoch,
			    (unsigned long long)reach);
			return;
		}
		key = afmt_vfy_key(v, r.epoch, r.log_id, reach);
	}
	if (key == NULL || afmt_check_mac(key, &r) == -1) {
		afmt_vfy_bad_line(v, line, len, off, parsed, r.seq);
		return;
	}
	if (afmt_sha256(line, len, h) == -1) {
		afmt_vfy_bad_line(v, line, len, off, parsed, r.seq);
		return;
	}
	if (!v->have_log) {
		memcpy(v->log_id, r.log_id, sizeof(v->log_id));
		v->have_log = true;
	}
	if (!v->started) {
		afmt_vfy_begin(v, &r);
		afmt_vfy_set_epoch(v, r.epoch);
		first = true;
	}
	if (r.seq < v->exp) {
		afmt_vfy_old(v, &r, h, off);
		return;
	}
	gap = r.seq - v->exp;
	afmt_vfy_resolve_bad(v, r.seq, v->lineno, off);

	if (v->jump)
		afmt_vfy_resolve_jump(v, r.epoch, false);

	if (gap == 0 && !first && memcmp(r.prev, v->head, AFMT_HASH_LEN) != 0 &&
	    !v->suspect)
		afmt_report(v, AFMT_MODIFIED, r.seq - 1, 0, v->file, v->lineno,
		    off, "the hash of seq %llu does not match the prev of "
		    "seq %llu", (unsigned long long)(r.seq - 1),
		    (unsigned long long)r.seq);
	if (first && r.seq == 1 && memcmp(r.prev, afmt_zero_hash,
	    AFMT_HASH_LEN) != 0)
		afmt_report(v, AFMT_FORGED, r.seq, 0, v->file, v->lineno, off,
		    "seq 1 does not begin a chain");
	v->suspect = false;

	if (r.epoch < v->epoch) {
		afmt_report(v, AFMT_EPOCH_VIOLATION, r.seq, 0, v->file,
		    v->lineno, off, "epoch %llu after epoch %llu%s",
		    (unsigned long long)r.epoch, (unsigned long long)v->epoch,
		    v->sum.last_is_seal ? " was sealed" : "");
		v->suspect = true;
		afmt_vfy_accept(v, &r, h, off);
		return;
	}
	if (r.epoch > v->epoch) {
		if (gap > 0 && r.epoch - v->epoch <= gap) {
			/* The absent records may have held the seals. */
			afmt_vfy_set_epoch(v, r.epoch);
		} else {
			v->jump = true;
			v->jump_seq = r.seq;
			v->jump_from = v->epoch;
			v->jump_to = r.epoch;
			v->jump_file = v->file;
			v->jump_line = v->lineno;
			v->jump_off = off;
			v->jump_seal = strcmp(r.type, "seal") == 0;
			v->suspect = true;
		}
	}
	afmt_vfy_accept(v, &r, h, off);
}

void
afmt_vfy_buffer(struct afmt_vfy *v, const char *buf, size_t len)
{
	struct afmt_lines it;
	const char *line;
	size_t n, off;

	afmt_lines_init(&it, buf, len);
	while (afmt_lines_next(&it, &line, &n, &off))
		afmt_vfy_line(v, line, n, off);
}

void
afmt_vfy_finish(struct afmt_vfy *v)
{
	size_t i;
	size_t idx = 0;
	const struct afmt_open *o;
	uint64_t last = v->started ? v->exp - 1 : 0;

	if (v->nbad > 0) {
		uint64_t s = v->started ? v->exp : 0;
		if (v->repair) {
			v->sum.torn = true;
			v->sum.torn_offset = v->bad[0].offset;
			v->sum.torn_seq = s;
		} else if (v->bad_torn || !v->started) {
			afmt_report(v, AFMT_TORN_TAIL, s, 0, v->bad[0].file,
			    v->bad[0].line, v->bad[0].offset,
			    "the file does not end in a complete record "
			    "(%zu bad line(s) from offset %llu)", v->nbad,
			    (unsigned long long)v->bad[0].offset);
		} else {
			afmt_report(v, AFMT_MODIFIED, s, s + v->nbad - 1,
			    v->bad[0].file, v->bad[0].line, v->bad[0].offset,
			    "%zu last line(s) fail verification", v->nbad);
		}
		v->nbad = 0;
	}
	afmt_vfy_resolve_jump(v, 0, true);
	for (i = 0; i < v->nmiss; i++)
		afmt_report(v, AFMT_MISSING, v->miss[i].a, v->miss[i].b,
		    v->miss[i].file, v->miss[i].line, v->miss[i].offset,
		    "seq %llu..%llu absent from the chain",
		    (unsigned long long)v->miss[i].a,
		    (unsigned long long)v->miss[i].b);
	v->nmiss = 0;
	for (i = 0; i < v->nanchors; i++) {
		struct afmt_anchor *a = &v->anchors[i];
		if (a->checked)
			continue;
		if (a->seq > last)
			afmt_report(v, AFMT_TRUNCATED, a->seq, 0, v->file, 0, 0,
			    "the log ends at seq %llu, before the anchored "
			    "seq %llu", (unsigned long long)last,
			    (unsigned long long)a->seq);
		else
			v->sum.anchors_unchecked++;
	}
	while ((o = afmt_idset_next(&v->open, &idx)) != NULL) {
		struct afmt_finding f;
		memset(&f, 0, sizeof(f));
		f.kind = AFMT_OPEN;
		f.seq = f.seq_end = o->seq;
		f.file = v->file;
		snprintf(f.id, sizeof(f.id), "%s", o->id);
		snprintf(f.detail, sizeof(f.detail),
		    "request %s (caller %s) has no outcome", o->id, o->caller);
		v->sum.infos++;
		if (v->cb)
			v->cb(&f, v->cbarg);
	}
	memcpy(v->sum.head, v->head, AFMT_HASH_LEN);
	memcpy(v->sum.log_id, v->log_id, sizeof(v->log_id));
	v->sum.epoch = v->epoch;
}

void
afmt_vfy_summary(const struct afmt_vfy *v, struct afmt_summary *s)
{
	*s = v->sum;
	memcpy(s->head, v->head, AFMT_HASH_LEN);
	memcpy(s->log_id, v->log_id, sizeof(v->log_id));
	s->epoch = v->epoch;
	if (v->started && s->records == 0)
		s->last_seq = v->exp - 1;
}

const struct afmt_idset *
afmt_vfy_open(const struct afmt_vfy *v)
{
	return &v->open;
}
