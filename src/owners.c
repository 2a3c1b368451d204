/*
 * owners.c: client ownership in the idempotency store (see owners.h).
 *
 * Two databases kept in step, in the same transactions:
 *   owners: client id -> caller name
 *   owned:  caller NUL client id -> "" (one caller's clients, in order)
 * and a queue of operator changes for the audit log:
 *   admin:  be64 Unix ms, be32 pid -> the event's JSON members
 * All of it runs on the store thread (idem_call) or in an operator
 * tool's own transaction (idem_db_txn); nothing here touches the loop
 * but the callbacks.
 */
#include "owners.h"
#include "idem.h"
#include "idem_txn.h"
#include "util.h"
#include "validate_kyc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define OWNED_KEY_MAX	(OWNERS_CALLER_MAX + 1 + OWNERS_ID_MAX)

bool
owners_id_ok(const char *id, size_t len)
{
	return kyc_id_ok(id, len);
}

/* ---- inside a transaction ---------------------------------------- */

/* The owner of id into out (OWNERS_CALLER_MAX + 1); 1, 0 none, or an
 * LMDB error as -rc. */
static int
t_get(struct idem_txn *t, const char *id, char *out)
{
	MDB_val k, v;
	int rc;

	if (t->dbis->owners == 0)
		return 0;	/* a store from before owners */
	k.mv_data = (void *)id;
	k.mv_size = strlen(id);
	if ((rc = mdb_get(t->txn, t->dbis->owners, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return -rc;
	if (v.mv_size == 0 || v.mv_size > OWNERS_CALLER_MAX)
		return 0;	/* not ours: as if none */
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = '\0';
	return 1;
}

static size_t
owned_key(const char *caller, const char *id, char *kb)
{
	size_t c = strlen(caller), n = strlen(id);

	memcpy(kb, caller, c);
	kb[c] = '\0';
	memcpy(kb + c + 1, id, n);
	return c + 1 + n;
}

/* Remove id's owner (both databases); 1 removed, 0 none, -rc. */
static int
t_del(struct idem_txn *t, const char *id)
{
	char prev[OWNERS_CALLER_MAX + 1], kb[OWNED_KEY_MAX];
	MDB_val k;
	int rc;

	if ((rc = t_get(t, id, prev)) <= 0)
		return rc;
	k.mv_data = (void *)id;
	k.mv_size = strlen(id);
	if ((rc = mdb_del(t->txn, t->dbis->owners, &k, NULL)) != 0)
		return -rc;
	k.mv_data = kb;
	k.mv_size = owned_key(prev, id, kb);
	rc = mdb_del(t->txn, t->dbis->owned, &k, NULL);
	return rc == 0 || rc == MDB_NOTFOUND ? 1 : -rc;
}

/* id belongs to caller from now on; 0 or -rc.  Safe to repeat. */
static int
t_put(struct idem_txn *t, const char *id, const char *caller)
{
	char kb[OWNED_KEY_MAX];
	MDB_val k, v;
	int rc;

	if ((rc = t_del(t, id)) < 0)
		return rc;
	k.mv_data = (void *)id;
	k.mv_size = strlen(id);
	v.mv_data = (void *)caller;
	v.mv_size = strlen(caller);
	if ((rc = mdb_put(t->txn, t->dbis->owners, &k, &v, 0)) != 0)
		return -rc;
	k.mv_data = kb;
	k.mv_size = owned_key(caller, id, kb);
	v.mv_data = kb;
	v.mv_size = 0;
	rc = mdb_put(t->txn, t->dbis->owned, &k, &v, 0);
	return rc == 0 ? 0 : -rc;
}

/* ---- the loop's questions (store thread work) --------------------- */

static void
q_done(int rc, void *arg)
{
	struct owners_q *q = arg;

	if (rc < 0)
		q->rc = -1;
	if (q->cb != NULL)
		q->cb(q, q->arg);
	free(q->out);
	free(q->body);
	free(q);
}

static struct owners_q *
q_new(const char *client_id, const char *caller, owners_cb cb, void *arg)
{
	struct owners_q *q;

	if (client_id != NULL && !owners_id_ok(client_id, strlen(client_id)))
		return NULL;
	if (caller != NULL && (caller[0] == '\0' ||
	    strlen(caller) > OWNERS_CALLER_MAX))
		return NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if (client_id != NULL)
		strcpy(q->client_id, client_id);
	if (caller != NULL)
		strcpy(q->caller, caller);
	q->cb = cb;
	q->arg = arg;
	return q;
}

static struct owners_q *
q_send(struct idem_port *p, struct owners_q *q, bool write, idem_txn_fn fn)
{
	if (q == NULL)
		return NULL;
	if (idem_call(p, write, fn, q_done, q) == -1) {
		free(q->body);
		free(q);
		return NULL;
	}
	return q;
}

static int
w_get(struct idem_txn *t, void *arg)
{
	struct owners_q *q = arg;
	int rc = t_get(t, q->client_id, q->owner);

	q->found = rc == 1;
	return rc < 0 ? -1 : 0;
}

static int
w_put(struct idem_txn *t, void *arg)
{
	struct owners_q *q = arg;

	return t_put(t, q->client_id, q->caller);
}

static int
w_del(struct idem_txn *t, void *arg)
{
	struct owners_q *q = arg;
	int rc = t_del(t, q->client_id);

	return rc < 0 ? rc : 0;
}

/*
 * Does o hold an integer json-c may have clamped (beyond int64 it keeps
 * uint64, then saturates at UINT64_MAX; below int64 at INT64_MIN)?  Such
 * a value would be re-serialized as a different number, so an entry
 * holding one is not passed on changed: the list is refused instead.
 * depth is bounded by the parse's own depth cap.
 */
static bool
holds_clamped_int(struct json_object *o)
{
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_int:
		return json_object_get_uint64(o) == UINT64_MAX ||
		    json_object_get_int64(o) == INT64_MIN;
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (holds_clamped_int(json_object_array_get_idx(o, i)))
				return true;
		return false;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			(void)k;
			if (holds_clamped_int(v))
				return true;
		}
		return false;
	}
	default:
		return false;
	}
}

/*
 * Filter a list: parse (strict enough for an upstream answer: json-c's
 * own parser, depth-capped), keep owned entries, re-serialize.  On the
 * store thread: a 16 MiB list never stalls a loop.
 */
static int
w_filter(struct idem_txn *t, void *arg)
{
	struct owners_q *q = arg;
	struct json_tokener *tok;
	struct json_object *in, *out, *id;
	char who[OWNERS_CALLER_MAX + 1];
	const char *s;
	size_t i, n, len;
	int rc = -1;

	if ((tok = json_tokener_new_ex(q->max_depth)) == NULL)
		return -1;
	in = json_tokener_parse_ex(tok, q->body, (int)q->len);
	if (in == NULL || json_tokener_get_parse_end(tok) != q->len ||
	    !json_object_is_type(in, json_type_array)) {
		json_tokener_free(tok);
		json_object_put(in);
		return -1;
	}
	json_tokener_free(tok);
	out = json_object_new_array();
	n = json_object_array_length(in);
	for (i = 0; out != NULL && i < n; i++) {
		struct json_object *e = json_object_array_get_idx(in, i);

		if (json_object_object_get_ex(e, "id", &id) &&
		    json_object_is_type(id, json_type_string) &&
		    owners_id_ok(json_object_get_string(id),
		    strlen(json_object_get_string(id))) &&
		    t_get(t, json_object_get_string(id), who) == 1 &&
		    strcmp(who, q->caller) == 0) {
			if (holds_clamped_int(e)) {
				json_object_put(out);
				json_object_put(in);
				return -1;
			}
			json_object_array_add(out, json_object_get(e));
			q->kept++;
		} else
			q->withheld++;
	}
	if (out != NULL && (s = json_object_to_json_string_length(out,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
	    &len)) != NULL && (q->out = malloc(len + 1)) != NULL) {
		memcpy(q->out, s, len + 1);
		q->out_len = len;
		rc = 0;
	}
	json_object_put(out);
	json_object_put(in);
	return rc;
}

struct owners_q *
owners_get(struct idem_port *p, const char *client_id, owners_cb cb,
    void *arg)
{
	return q_send(p, q_new(client_id, NULL, cb, arg), false, w_get);
}

struct owners_q *
owners_put(struct idem_port *p, const char *client_id, const char *caller,
    owners_cb cb, void *arg)
{
	return q_send(p, q_new(client_id, caller, cb, arg), true, w_put);
}

struct owners_q *
owners_del(struct idem_port *p, const char *client_id, owners_cb cb,
    void *arg)
{
	return q_send(p, q_new(client_id, NULL, cb, arg), true, w_del);
}

struct owners_q *
owners_filter(struct idem_port *p, const char *caller, char **body,
    size_t len, int max_depth, owners_cb cb, void *arg)
{
	struct owners_q *q;

	if (*body == NULL || len > INT32_MAX ||
	    (q = q_new(NULL, caller, cb, arg)) == NULL)
		return NULL;
	q->body = *body;
	q->len = len;
	q->max_depth = max_depth;
	if (idem_call(p, false, w_filter, q_done, q) == -1) {
		free(q);	/* the body stays the caller's */
		return NULL;
	}
	*body = NULL;
	return q;
}

void
owners_forget(struct owners_q *q)
{
	if (q != NULL)
		q->cb = NULL;
}

/* ---- operators ------------------------------------------------------ */

struct list_args {
	const char	*caller;
	owners_list_fn	 fn;
	void		*arg;
};

static int
w_list(struct idem_txn *t, void *arg)
{
	struct list_args *a = arg;
	char who[OWNERS_CALLER_MAX + 1], id[OWNERS_ID_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	size_t cl;
	int rc;

	if (t->dbis->owned == 0)
		return 0;
	if (mdb_cursor_open(t->txn, t->dbis->owned, &cur) != 0)
		return -1;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *kp = k.mv_data, *nul;

		if ((nul = memchr(kp, '\0', k.mv_size)) == NULL)
			continue;
		cl = (size_t)(nul - kp);
		if (cl == 0 || cl > OWNERS_CALLER_MAX ||
		    k.mv_size - cl - 1 > OWNERS_ID_MAX)
			continue;
		memcpy(who, kp, cl);
		who[cl] = '\0';
		memcpy(id, nul + 1, k.mv_size - cl - 1);
		id[k.mv_size - cl - 1] = '\0';
		if (a->caller == NULL || strcmp(a->caller, who) == 0)
			a->fn(id, who, a->arg);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : -1;
}

int
owners_db_list(struct idem_db *db, const char *caller, owners_list_fn fn,
    void *arg)
{
	struct list_args a = { caller, fn, arg };

	return idem_db_txn(db, false, w_list, &a);
}

struct set_args {
	const char	*id, *caller, *by;
};

/* Queue an admin event: `"action":"...","client_id":"...",...`. */
static int
t_admin(struct idem_txn *t, const char *members)
{
	unsigned char kb[12];
	struct timespec ts;
	uint64_t ms;
	uint32_t pid = (uint32_t)getpid();
	MDB_val k, v;
	int i, rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	for (i = 0; i < 8; i++)
		kb[i] = (unsigned char)(ms >> (56 - 8 * i));
	for (i = 0; i < 4; i++)
		kb[8 + i] = (unsigned char)(pid >> (24 - 8 * i));
	k.mv_data = kb;
	k.mv_size = sizeof(kb);
	v.mv_data = (void *)members;
	v.mv_size = strlen(members);
	/* Two changes in the same millisecond: the later waits its turn
	 * (MDB_NOOVERWRITE), one millisecond on. */
	while ((rc = mdb_put(t->txn, t->dbis->admin, &k, &v,
	    MDB_NOOVERWRITE)) == MDB_KEYEXIST) {
		ms++;
		for (i = 0; i < 8; i++)
			kb[i] = (unsigned char)(ms >> (56 - 8 * i));
	}
	return rc == 0 ? 0 : -rc;
}

static int
w_set(struct idem_txn *t, void *arg)
{
	struct set_args *a = arg;
	char members[512], by[160];
	int rc;

	if (json_quote(a->by, by, sizeof(by)) == -1)
		strcpy(by, "\"?\"");
	if (a->caller != NULL) {
		if ((rc = t_put(t, a->id, a->caller)) < 0)
			return rc;
		snprintf(members, sizeof(members), "\"action\":\"owner_assign\","
		    "\"client_id\":\"%s\",\"caller\":\"%s\",\"by\":%s", a->id,
		    a->caller, by);
		rc = 1;
	} else {
		if ((rc = t_del(t, a->id)) <= 0)
			return rc;
		snprintf(members, sizeof(members), "\"action\":\"owner_forget\","
		    "\"client_id\":\"%s\",\"by\":%s", a->id, by);
	}
	if (t_admin(t, members) < 0)
		return -1;
	return rc;
}

int
owners_db_set(struct idem_db *db, const char *client_id, const char *caller,
    const char *by)
{
	struct set_args a = { client_id, caller, by };

	/* Both go into fixed buffers (owned_key) and the admin record. */
	if (!owners_id_ok(client_id, strlen(client_id)) ||
	    (caller != NULL && !conf_caller_name_ok(caller)))
		return -1;
	return idem_db_txn(db, true, w_set, &a);
}

struct drain_args {
	owners_admin_fn	 fn;
	void		*arg;
	int		 n;
};

static int
w_drain(struct idem_txn *t, void *arg)
{
	struct drain_args *a = arg;
	char *members;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, r;

	if (mdb_cursor_open(t->txn, t->dbis->admin, &cur) != 0)
		return -1;
	/* Every event reaches the log, whatever its size (the store caps
	 * values); one that cannot be read stays for the next start. */
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		if ((members = malloc(v.mv_size + 1)) == NULL) {
			rc = -1;
			break;
		}
		memcpy(members, v.mv_data, v.mv_size);
		members[v.mv_size] = '\0';
		r = a->fn(members, a->arg);
		free(members);
		if (r == -1) {
			rc = -1;
			break;
		}
		a->n++;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? a->n : -1;
}

int
owners_admin_drain(struct idem *im, owners_admin_fn fn, void *arg)
{
	struct drain_args a = { fn, arg, 0 };

	return idem_run_now(im, true, w_drain, &a);
}
