/*
 * cmgate-idem: the operators' tool for cmgate's idempotency store.
 *
 *   list [--unknown]            every stored key, one JSON line each
 *   show CALLER KEY [--body]    one key (the stored body only on --body)
 *   forget CALLER KEY           delete a key: its next use is processed
 *                               anew
 *   owners list [--caller NAME] which caller owns which client
 *   owners assign CLIENT CALLER a client (made before cmgate, or through
 *                               CryptoMate's portal) becomes CALLER's
 *   owners forget CLIENT        the client has no owner any more
 *
 * Owner changes are recorded as "admin" audit records when the gateway
 * next starts (they name the operator's user).
 * The store is named by -c CONFIG (idempotency.path) or -p FOLDER.  It
 * may be used while cmgate runs: LMDB serializes writers across
 * processes, and the gateway reads the store afresh on every lookup.
 * Stored bodies hold personal data; run it as the gateway's user.
 * Exit: 0 done, 1 no such key, 2 store error, 3 usage.
 */
#include "conf.h"
#include "idem.h"
#include "owners.h"
#include "util.h"

#include <getopt.h>
#include <pwd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#define EX_OK		0
#define EX_NOKEY	1
#define EX_STORE	2
#define EX_USAGE	3

static const char usage_text[] =
"usage: cmgate-idem (-c CONFIG | -p FOLDER) COMMAND ...\n"
"\n"
"  list [--unknown]\n"
"      Print every stored key as a JSON line: caller, key, state\n"
"      (completed or outcome_unknown), status, request_id, created,\n"
"      expires, expired.  --unknown: only outcome_unknown keys.\n"
"  show CALLER KEY [--body]\n"
"      Print one key; --body adds the stored response body (personal\n"
"      data).\n"
"  forget CALLER KEY\n"
"      Delete the key.  Its next use is processed as new: do this for\n"
"      an outcome_unknown key once CryptoMate shows the client was NOT\n"
"      created (see README, \"Idempotency keys\").\n"
"  owners list [--caller NAME]\n"
"      Print which caller owns which client, a JSON line each.\n"
"  owners assign CLIENT_ID CALLER\n"
"      Make CALLER the client's owner (a client created before cmgate,\n"
"      or through CryptoMate's portal; or a caller that was renamed).\n"
"  owners forget CLIENT_ID\n"
"      The client has no owner: only callers with clients \"all\"\n"
"      reach it.  Owner changes take effect at once, on a running\n"
"      gateway too, and become \"admin\" audit records at its next\n"
"      start.\n"
"\n"
"Exit: 0 done, 1 no such key, 2 store error, 3 usage.\n";

struct show_opts {
	bool	only_unknown;
	bool	body;
	int	n;
};

static void
iso_ms(uint64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}

static void
print_record(const char *caller, const char *key,
    const struct idem_record *rec, void *arg)
{
	struct show_opts *o = arg;
	struct json_object *j;
	struct timespec now;
	char ts[64];

	if (o->only_unknown && rec->state != IDEM_UNKNOWN)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	j = json_object_new_object();
	json_object_object_add(j, "caller", json_object_new_string(caller));
	json_object_object_add(j, "key", json_object_new_string(key));
	json_object_object_add(j, "state", json_object_new_string(
	    rec->state == IDEM_UNKNOWN ? "outcome_unknown" : "completed"));
	json_object_object_add(j, "status", json_object_new_int(rec->status));
	json_object_object_add(j, "request_id",
	    json_object_new_string(rec->request_id));
	iso_ms(rec->created_ms, ts, sizeof(ts));
	json_object_object_add(j, "created", json_object_new_string(ts));
	iso_ms(rec->expires_ms, ts, sizeof(ts));
	json_object_object_add(j, "expires", json_object_new_string(ts));
	json_object_object_add(j, "expired", json_object_new_boolean(
	    rec->expires_ms <= (uint64_t)now.tv_sec * 1000u +
	    (uint64_t)now.tv_nsec / 1000000u));
	if (o->body) {
		json_object_object_add(j, "content_type",
		    json_object_new_string(rec->content_type));
		json_object_object_add(j, "body",
		    json_object_new_string_len(rec->body,
		    (int)rec->body_len));
	}
	printf("%s\n", json_object_to_json_string_ext(j,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
	o->n++;
}

static void
print_owner(const char *client_id, const char *caller, void *arg)
{
	int *n = arg;
	char id[6 * OWNERS_ID_MAX + 8], who[6 * OWNERS_CALLER_MAX + 8];

	/* Written through cmgate only as identifiers, but read from a file
	 * anyone with the store's rights can change: quoted, so that a
	 * line stays one JSON object and no terminal escape goes out. */
	if (json_quote(client_id, id, sizeof(id)) == -1 ||
	    json_quote(caller, who, sizeof(who)) == -1)
		return;
	printf("{\"client_id\":%s,\"caller\":%s}\n", id, who);
	(*n)++;
}

/* Who is making the change, for the admin record. */
static const char *
operator_name(void)
{
	const char *s = getenv("SUDO_USER");
	struct passwd *pw;

	if (s != NULL && *s != '\0')
		return s;
	pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_name : "unknown";
}

/* -c CONFIG: load it into *cfg, and the store is its idempotency.path;
 * without -c, *path stays.  -1 (said on stderr) when it cannot load. */
static int
load_conf(const char *conf, struct config **cfg, const char **path)
{
	char err[1024];

	*cfg = NULL;
	if (conf == NULL)
		return 0;
	if ((*cfg = conf_load(conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cmgate-idem: %s\n", err);
		return -1;
	}
	*path = (*cfg)->idempotency.path;
	return 0;
}

/*
 * cmgate-idem owners ...: list, assign, forget.  With -c, a caller that
 * the config does not name is refused for assign (a typo would hand the
 * client to nobody).
 */
static int
owners_main(const char *conf, const char *path, const char *only_caller,
    int argc, char **argv)
{
	struct config *cfg = NULL;
	struct idem_db *db = NULL;
	const char *sub = argc > 0 ? argv[0] : "";
	bool write = strcmp(sub, "assign") == 0 || strcmp(sub, "forget") == 0;
	char err[1024];
	int rc = EX_STORE, r, n = 0;
	size_t i;

	if (!(strcmp(sub, "list") == 0 && argc == 1) &&
	    !(strcmp(sub, "assign") == 0 && argc == 3) &&
	    !(strcmp(sub, "forget") == 0 && argc == 2)) {
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	/* What is not an id or a name is not echoed: it may hold anything,
	 * terminal escapes included. */
	if (write && !owners_id_ok(argv[1], strlen(argv[1]))) {
		fprintf(stderr, "cmgate-idem: the client id is not 1..64 of "
		    "A-Z a-z 0-9 _ -\n");
		return EX_USAGE;
	}
	if (strcmp(sub, "assign") == 0 && !conf_caller_name_ok(argv[2])) {
		fprintf(stderr, "cmgate-idem: the caller name is not 1..64 of "
		    "A-Z a-z 0-9 . _ -\n");
		return EX_USAGE;
	}
	if (load_conf(conf, &cfg, &path) == -1)
		return EX_STORE;
	if (cfg != NULL) {
		if (strcmp(sub, "assign") == 0) {
			for (i = 0; i < cfg->ncallers; i++)
				if (strcmp(cfg->callers[i].name, argv[2]) == 0)
					break;
			if (i == cfg->ncallers) {
				fprintf(stderr, "cmgate-idem: %s names no "
				    "caller %s\n", conf, argv[2]);
				conf_unref(cfg);
				return EX_USAGE;
			}
		}
	}
	if ((db = idem_db_open(path, write, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cmgate-idem: %s\n", err);
		goto out;
	}
	if (strcmp(sub, "list") == 0) {
		rc = owners_db_list(db, only_caller, print_owner, &n) == 0 ?
		    EX_OK : EX_STORE;
	} else {
		r = owners_db_set(db, argv[1], strcmp(sub, "assign") == 0 ?
		    argv[2] : NULL, operator_name());
		rc = r == 1 ? EX_OK : r == 0 ? EX_NOKEY : EX_STORE;
		if (r == 1 && strcmp(sub, "assign") == 0)
			printf("client %s now belongs to %s\n", argv[1],
			    argv[2]);
		else if (r == 1)
			printf("client %s has no owner now\n", argv[1]);
		else if (r == 0)
			fprintf(stderr, "cmgate-idem: client %s has no "
			    "owner\n", argv[1]);
	}
	if (rc == EX_STORE)
		fprintf(stderr, "cmgate-idem: store error\n");
out:
	idem_db_close(db);
	conf_unref(cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "path", required_argument, NULL, 'p' },
		{ "unknown", no_argument, NULL, 'u' },
		{ "body", no_argument, NULL, 'b' },
		{ "caller", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct show_opts o = { false, false, 0 };
	struct config *cfg = NULL;
	struct idem_db *db = NULL;
	const char *conf = NULL, *path = NULL, *cmd, *only_caller = NULL;
	char err[1024];
	int ch, rc = EX_STORE, r;

	while ((ch = getopt_long(argc, argv, "c:p:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'p': path = optarg; break;
		case 'u': o.only_unknown = true; break;
		case 'b': o.body = true; break;
		case 'C': only_caller = optarg; break;
		case 'h': fputs(usage_text, stdout); return EX_OK;
		default: fputs(usage_text, stderr); return EX_USAGE;
		}
	}
	if ((conf == NULL) == (path == NULL) || optind >= argc) {
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "owners") == 0)
		return owners_main(conf, path, only_caller, argc - optind,
		    argv + optind);
	if (strcmp(cmd, "list") == 0 ? argc != optind :
	    (strcmp(cmd, "show") && strcmp(cmd, "forget")) ||
	    argc != optind + 2) {
		fputs(usage_text, stderr);
		return EX_USAGE;
	}
	if (load_conf(conf, &cfg, &path) == -1)
		return EX_STORE;
	if ((db = idem_db_open(path, strcmp(cmd, "forget") == 0, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "cmgate-idem: %s\n", err);
		goto out;
	}
	if (strcmp(cmd, "list") == 0) {
		rc = idem_db_list(db, print_record, &o) == 0 ? EX_OK : EX_STORE;
	} else if (strcmp(cmd, "show") == 0) {
		r = idem_db_get(db, argv[optind], argv[optind + 1],
		    print_record, &o);
		rc = r == 1 ? EX_OK : r == 0 ? EX_NOKEY : EX_STORE;
	} else {
		r = idem_db_forget(db, argv[optind], argv[optind + 1]);
		rc = r == 1 ? EX_OK : r == 0 ? EX_NOKEY : EX_STORE;
		if (r == 1)
			printf("forgot %s / %s\n", argv[optind],
			    argv[optind + 1]);
	}
	if (rc == EX_NOKEY)
		fprintf(stderr, "cmgate-idem: no such key\n");
	else if (rc == EX_STORE)
		fprintf(stderr, "cmgate-idem: store error\n");
out:
	idem_db_close(db);
	conf_unref(cfg);
	return rc;
}
