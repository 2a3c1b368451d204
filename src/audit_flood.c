/*
 * audit_flood.c: individual records for unauthenticated refusals up to
 * a token bucket, counted summaries past it (see audit_flood.h).
 *
 * Why: a stranger needs no token to be refused, and each refusal used
 * to be a durable record of some 430 bytes, so anyone could fill the
 * audit disk (and, once it is full, make the gateway refuse everyone
 * with 503).  The bucket keeps the individual records to a trickle;
 * the summary keeps the evidence (when, how many, from where, why) in
 * a record of bounded size per interval.  What one second of flood can
 * add is AUDIT_FLOOD_RATE reject records and one summary: about 3 KiB,
 * whatever its rate; the burst adds a constant once.
 *
 * Source addresses are counted with the Space-Saving algorithm (Metwally
 * et al. 2005) over AUDIT_FLOOD_SLOTS slots: with at most that many
 * distinct addresses in an interval the counts are exact; past it a
 * new address takes the slot of the least counted one and inherits its
 * count plus one, so a listed count may be too high (never too low for
 * an address still listed), and any address with more than 1/SLOTS of
 * the interval's refusals is listed.  The summary says which case it
 * is ("sources_exact").  Memory is fixed.
 */
#include "audit_flood.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct flood_slot {
	char		 addr[AUDIT_FLOOD_ADDR_MAX + 1];	/* "" = free */
	uint64_t	 count;
};

struct flood_reason {
	char		 code[AUDIT_FLOOD_CODE_MAX + 1];	/* "" = free */
	uint64_t	 count;
};

struct audit_flood {
	pthread_mutex_t		 mu;
	/* The token bucket, in tokens; refilled from last_ns. */
	double			 tokens;
	uint64_t		 last_ns;
	/* The pending interval: opened by its first counted refusal. */
	uint64_t		 open_ns;	/* 0 = none pending */
	char			 from[32], to[32];	/* wall clock */
	uint64_t		 count;		/* counted refusals */
	uint64_t		 recorded;	/* own records meanwhile */
	bool			 exact;		/* no slot was taken over */
	struct flood_slot	 slots[AUDIT_FLOOD_SLOTS];
	struct flood_reason	 reasons[AUDIT_FLOOD_REASONS];
	uint64_t		 other_reasons;
	atomic_uint_fast64_t	 summarized;
};

struct audit_flood *
audit_flood_new(void)
{
	struct audit_flood *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	f->tokens = AUDIT_FLOOD_BURST;
	f->last_ns = now_mono_ns();
	f->exact = true;
	atomic_init(&f->summarized, 0);
	return f;
}

void
audit_flood_free(struct audit_flood *f)
{
	if (f == NULL)
		return;
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/*
 * Copy s into out (cap bytes), keeping only characters that need no
 * JSON escape and belong in an address or a code; anything else is
 * '?'.  What a summary prints can then be bounded in advance.
 */
static void
flood_clean(const char *s, char *out, size_t cap)
{
	size_t i;

	if (s == NULL || *s == '\0')
		s = "unknown";
	for (i = 0; s[i] != '\0' && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '.' || c == ':' ||
		    c == '_' || c == '-' || c == '%') ? (char)c : '?';
	}
	out[i] = '\0';
}

/* Space-Saving: count addr in the slots. */
static void
flood_count_addr(struct audit_flood *f, const char *addr)
{
	struct flood_slot *s, *min = NULL, *free_slot = NULL;
	size_t i;

	for (i = 0; i < AUDIT_FLOOD_SLOTS; i++) {
		s = &f->slots[i];
		if (s->addr[0] == '\0') {
			if (free_slot == NULL)
				free_slot = s;
			continue;
		}
		if (strcmp(s->addr, addr) == 0) {
			s->count++;
			return;
		}
		if (min == NULL || s->count < min->count)
			min = s;
	}
	if (free_slot != NULL) {
		snprintf(free_slot->addr, sizeof(free_slot->addr), "%s", addr);
		free_slot->count = 1;
		return;
	}
	f->exact = false;
	snprintf(min->addr, sizeof(min->addr), "%s", addr);
	min->count++;
}

static void
flood_count_reason(struct audit_flood *f, const char *code)
{
	struct flood_reason *r;
	size_t i;

	for (i = 0; i < AUDIT_FLOOD_REASONS; i++) {
		r = &f->reasons[i];
		if (r->code[0] == '\0') {
			snprintf(r->code, sizeof(r->code), "%s", code);
			r->count = 1;
			return;
		}
		if (strcmp(r->code, code) == 0) {
			r->count++;
			return;
		}
	}
	f->other_reasons++;
}

bool
audit_flood_admit(struct audit_flood *f, const char *addr,
    const char *reason, uint64_t now_ns, bool *opened)
{
	char a[AUDIT_FLOOD_ADDR_MAX + 1], c[AUDIT_FLOOD_CODE_MAX + 1];
	*opened = false;
	pthread_mutex_lock(&f->mu);
	if (now_ns > f->last_ns) {
		f->tokens += (double)(now_ns - f->last_ns) *
		    AUDIT_FLOOD_RATE / 1e9;
		if (f->tokens > AUDIT_FLOOD_BURST)
			f->tokens = AUDIT_FLOOD_BURST;
		f->last_ns = now_ns;
	}
	if (f->tokens >= 1.0) {
		f->tokens -= 1.0;
		if (f->open_ns != 0)
			f->recorded++;
		pthread_mutex_unlock(&f->mu);
		return true;
	}
	flood_clean(addr, a, sizeof(a));
	flood_clean(reason, c, sizeof(c));
	if (f->open_ns == 0) {
		f->open_ns = now_ns ? now_ns : 1;
		now_iso8601(f->from, sizeof(f->from));
		*opened = true;
	}
	now_iso8601(f->to, sizeof(f->to));
	f->count++;
	flood_count_addr(f, a);
	flood_count_reason(f, c);
	pthread_mutex_unlock(&f->mu);
	atomic_fetch_add(&f->summarized, 1);
	return false;
}

uint64_t
audit_flood_due(struct audit_flood *f)
{
	uint64_t due;

	pthread_mutex_lock(&f->mu);
	due = f->open_ns ? f->open_ns + AUDIT_FLOOD_PERIOD_NS : 0;
	pthread_mutex_unlock(&f->mu);
	return due;
}

/* The index of the most counted slot not yet listed, or -1. */
static int
flood_next_top(const struct audit_flood *f, const bool *listed)
{
	int i, best = -1;

	for (i = 0; i < AUDIT_FLOOD_SLOTS; i++)
		if (f->slots[i].addr[0] != '\0' && !listed[i] &&
		    (best == -1 || f->slots[i].count > f->slots[best].count))
			best = i;
	return best;
}

size_t
audit_flood_take(struct audit_flood *f, bool force, uint64_t now_ns,
    char *out, size_t outlen)
{
	bool listed[AUDIT_FLOOD_SLOTS] = { false };
	uint64_t shown = 0;
	size_t o = 0, i;
	int k, n;

#define EMIT(...) do {							\
	n = snprintf(out + o, outlen - o, __VA_ARGS__);			\
	if (n < 0 || (size_t)n >= outlen - o)				\
		goto toolong;						\
	o += (size_t)n;							\
} while (0)
	pthread_mutex_lock(&f->mu);
	if (f->open_ns == 0 || (!force &&
	    now_ns < f->open_ns + AUDIT_FLOOD_PERIOD_NS)) {
		pthread_mutex_unlock(&f->mu);
		return 0;
	}
	EMIT("\"from\":\"%s\",\"to\":\"%s\",\"count\":%llu,"
	    "\"recorded\":%llu,\"reasons\":[", f->from, f->to,
	    (unsigned long long)f->count, (unsigned long long)f->recorded);
	for (i = 0; i < AUDIT_FLOOD_REASONS && f->reasons[i].code[0]; i++)
		EMIT("%s{\"code\":\"%s\",\"count\":%llu}", i ? "," : "",
		    f->reasons[i].code,
		    (unsigned long long)f->reasons[i].count);
	if (f->other_reasons)
		EMIT("%s{\"code\":\"other\",\"count\":%llu}", i ? "," : "",
		    (unsigned long long)f->other_reasons);
	EMIT("],\"sources\":[");
	for (i = 0; i < AUDIT_FLOOD_TOP &&
	    (k = flood_next_top(f, listed)) != -1; i++) {
		listed[k] = true;
		shown += f->slots[k].count;
		EMIT("%s{\"addr\":\"%s\",\"count\":%llu}", i ? "," : "",
		    f->slots[k].addr, (unsigned long long)f->slots[k].count);
	}
	/* The slots' counts sum to the total (each refusal adds one to
	 * one slot), so "others" is what the listed ones leave. */
	EMIT("],\"others\":%llu,\"sources_exact\":%s",
	    (unsigned long long)(shown < f->count ? f->count - shown : 0),
	    f->exact ? "true" : "false");
#undef EMIT
	f->open_ns = 0;
	f->count = f->recorded = f->other_reasons = 0;
	f->exact = true;
	memset(f->slots, 0, sizeof(f->slots));
	memset(f->reasons, 0, sizeof(f->reasons));
	pthread_mutex_unlock(&f->mu);
	return o;
toolong:
	/* Cannot happen with AUDIT_FLOOD_FIELDS_MAX (what is printed is
	 * cleaned and capped); keep the counts for the next try. */
	pthread_mutex_unlock(&f->mu);
	return 0;
}

uint64_t
audit_flood_summarized(struct audit_flood *f)
{
	return f ? atomic_load(&f->summarized) : 0;
}
