/*
 * audit_idset.c: the set of open requests (request ids with no outcome
 * record yet), and the one tracker that keeps it from records.
 *
 * The writer follows the records it writes, so that a rotation can
 * carry the open ones into the next file and a restart can close them
 * as abandoned; recovery rebuilds the set from the file; the verifier
 * reports the ones left open (OPEN).  All three track through
 * afmt_idset_track, so they agree on what is open.  The set is a hash
 * table with open addressing and linear probing: a gateway adds and
 * deletes one id per request, forever, so it must stay small.
 */
#include "audit_format.h"
#include "audit_format_int.h"

#include <stdlib.h>
#include <string.h>

static uint64_t
afmt_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static struct afmt_open *
afmt_idset_find(const struct afmt_idset *set, const char *id, bool for_insert)
{
	size_t i, mask;
	struct afmt_open *tomb = NULL;

	if (set->cap == 0)
		return NULL;
	mask = set->cap - 1;
	for (i = afmt_hash_str(id) & mask;; i = (i + 1) & mask) {
		struct afmt_open *e = &set->v[i];
		if (e->id[0] == '\0' && !e->tomb)
			return for_insert ? (tomb ? tomb : e) : NULL;
		if (e->tomb) {
			if (tomb == NULL)
				tomb = e;
		} else if (strcmp(e->id, id) == 0)
			return e;
	}
}

static int
afmt_idset_rehash(struct afmt_idset *set)
{
	struct afmt_idset n = { 0 };
	size_t i;

	/*
	 * Tombstones go at every rehash, and the table is sized for the
	 * live entries alone (under 40% full after it): a gateway adds and
	 * deletes one id per request forever, and sizing by live entries
	 * plus tombstones would double the table every 0.7 x cap requests.
	 */
	n.cap = 64;
	while ((set->n + 1) * 10 >= n.cap * 4)
		n.cap *= 2;
	if ((n.v = calloc(n.cap, sizeof(*n.v))) == NULL)
		return -1;
	for (i = 0; i < set->cap; i++) {
		struct afmt_open *e = &set->v[i], *d;
		if (e->id[0] == '\0' || e->tomb)
			continue;
		d = afmt_idset_find(&n, e->id, true);
		*d = *e;
		n.n++;
		n.used++;
	}
	free(set->v);
	*set = n;
	return 0;
}

int
afmt_idset_add(struct afmt_idset *set, const char *id, const char *caller,
    uint64_t seq)
{
	struct afmt_open *e;
	size_t idlen = strlen(id), clen = caller ? strlen(caller) : 0;

	if (idlen == 0 || idlen >= sizeof(e->id))
		return -1;
	if ((set->used + 1) * 10 >= set->cap * 7 && afmt_idset_rehash(set) == -1)
		return -1;
	e = afmt_idset_find(set, id, true);
	if (e->id[0] != '\0' && !e->tomb)
		return 0;		/* already open */
	if (!e->tomb)
		set->used++;
	memcpy(e->id, id, idlen + 1);
	if (caller && clen < sizeof(e->caller))
		memcpy(e->caller, caller, clen + 1);
	else
		strcpy(e->caller, "null");
	e->seq = seq;
	e->tomb = false;
	set->n++;
	return 0;
}

int
afmt_idset_del(struct afmt_idset *set, const char *id)
{
	struct afmt_open *e = afmt_idset_find(set, id, false);

	if (e == NULL)
		return -1;
	e->id[0] = '\0';
	e->tomb = true;
	set->n--;
	return 0;
}

const struct afmt_open *
afmt_idset_next(const struct afmt_idset *set, size_t *idx)
{
	while (*idx < set->cap) {
		const struct afmt_open *e = &set->v[(*idx)++];
		if (e->id[0] != '\0' && !e->tomb)
			return e;
	}
	return NULL;
}

void
afmt_idset_free(struct afmt_idset *set)
{
	free(set->v);
	memset(set, 0, sizeof(*set));
}

/* The "open" member of a start (or carry) record: [{"request_id":..,
 * "caller":..,"seq":N},...] as carried across a rotation. */
static void
afmt_idset_add_list(struct afmt_idset *set, const char *fields, size_t flen)
{
	const char *vs, *ve, *p;

	if (afmt_member(fields, fields + flen, "open", &vs, &ve) == -1 ||
	    *vs != '[')
		return;
	p = vs + 1;
	for (;;) {
		const char *es, *ee;
		char id[65], caller[72];
		uint64_t seq = 0;

		p = afmt_skip_ws(p, ve);
		if (p >= ve || *p == ']' || *p != '{')
			return;
		es = p;
		if ((ee = afmt_skip_value(p, ve)) == NULL)
			return;
		if (afmt_field_str(es + 1, (size_t)(ee - es - 2), "request_id",
		    id, sizeof(id)) == 0) {
			if (afmt_field_raw(es + 1, (size_t)(ee - es - 2),
			    "caller", caller, sizeof(caller)) == -1)
				strcpy(caller, "null");
			(void)afmt_field_u64(es + 1, (size_t)(ee - es - 2),
			    "seq", &seq);
			(void)afmt_idset_add(set, id, caller, seq);
		}
		p = afmt_skip_ws(ee, ve);
		if (p >= ve || *p != ',')
			return;
		p++;
	}
}

void
afmt_idset_track(struct afmt_idset *set, const char *type,
    const char *fields, size_t flen, uint64_t seq)
{
	char id[65], caller[72];

	if (strcmp(type, "request") == 0) {
		if (afmt_field_str(fields, flen, "request_id", id,
		    sizeof(id)) == -1)
			return;
		if (afmt_field_raw(fields, flen, "caller", caller,
		    sizeof(caller)) == -1)
			strcpy(caller, "null");
		(void)afmt_idset_add(set, id, caller, seq);
	} else if (strcmp(type, "outcome") == 0) {
		if (afmt_field_str(fields, flen, "request_id", id,
		    sizeof(id)) == 0)
			(void)afmt_idset_del(set, id);
	} else if (strcmp(type, "start") == 0 || strcmp(type, "carry") == 0)
		afmt_idset_add_list(set, fields, flen);
}
