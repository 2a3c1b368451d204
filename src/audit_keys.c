/*
 * audit_keys.c: the audit log's keys at rest.
 *
 * The key state file holds the current epoch's key K_e, the body key,
 * the log id and the last seal (seq and head), so that a restart goes
 * on with the key the log has reached and checks the tail from that
 * seal (audit_recover.c).  It is replaced atomically at every epoch
 * end, and its bytes are wiped wherever they pass.  K0, the auditors'
 * initial key, is read only to begin a new log (and by cmgate -t), with
 * the reader cmgate-audit uses (afmt_read_k0).
 */
#include "audit_int.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#define AUDIT_STATE_CAP		4096

/*
 * Replace the state file atomically: temp file, fdatasync, rename,
 * fsync of the folder.  The state holds the current K_e, so the temp
 * file is 0600 from its creation and the buffer is wiped.
 */
int
audit_state_save(struct audit *a)
{
	char buf[1024], khex[2 * AFMT_KEY_LEN + 1], bhex[2 * AFMT_KEY_LEN + 1];
	char shex[2 * AFMT_HASH_LEN + 1], *tmp = NULL;
	size_t n, tlen;
	int fd = -1, rc = -1, len;

	hex_encode(a->key.k, AFMT_KEY_LEN, khex);
	hex_encode(a->body_key, AFMT_KEY_LEN, bhex);
	hex_encode(a->seal_head, AFMT_HASH_LEN, shex);
	len = snprintf(buf, sizeof(buf), "{\"v\":1,\"log\":\"%s\",\"epoch\":%llu,"
	    "\"key\":\"%s\",\"body_key\":\"%s\",\"seal_seq\":%llu,"
	    "\"seal_head\":\"%s\"}\n", a->log_id,
	    (unsigned long long)a->key.epoch, khex, bhex,
	    (unsigned long long)a->seal_seq, shex);
	OPENSSL_cleanse(khex, sizeof(khex));
	OPENSSL_cleanse(bhex, sizeof(bhex));
	if (len < 0 || (size_t)len >= sizeof(buf))
		goto fail;
	n = (size_t)len;
	tlen = strlen(a->state_path) + 5;
	if ((tmp = malloc(tlen)) == NULL)
		goto fail;
	snprintf(tmp, tlen, "%s.tmp", a->state_path);
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1)
		goto fail;
	if (fchmod(fd, 0600) == -1 || audit_write_all(fd, buf, n) == -1 ||
	    fdatasync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, a->state_path) == -1)
		goto fail;
	if (audit_fsync_dir(a->dir) == -1)
		goto fail;
	rc = 0;
fail:
	if (rc == -1)
		log_error("audit: cannot persist the key state %s: %s",
		    a->state_path, strerror(errno));
	if (fd != -1) {
		close(fd);
		(void)unlink(tmp);
	}
	free(tmp);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int
audit_hexmember(struct json_object *o, const char *name, unsigned char *out,
    size_t n)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    hex_decode(json_object_get_string(v), out, n) == -1)
		return -1;
	return 0;
}

static int
audit_u64member(struct json_object *o, const char *name, uint64_t *out)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (x = json_object_get_int64(v)) < 0 || x == INT64_MAX)
		return -1;
	*out = (uint64_t)x;
	return 0;
}

int
audit_state_load(struct audit *a, char *err, size_t errlen)
{
	struct json_object *o = NULL, *v;
	unsigned char k[AFMT_KEY_LEN];
	char *buf = NULL, e2[256];
	size_t len = 0;
	uint64_t epoch = 0;
	const char *id;
	int rc = -1;

	if (read_secret_file_ex(a->state_path, AUDIT_STATE_CAP, RF_NOFOLLOW,
	    &buf, &len, e2, sizeof(e2)) == -1) {
		snprintf(err, errlen, "key state: %s", e2);
		return -1;
	}
	if ((o = json_tokener_parse(buf)) == NULL ||
	    !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "v", &v) ||
	    json_object_get_int(v) != 1 ||
	    !json_object_object_get_ex(o, "log", &v) ||
	    (id = json_object_get_string(v)) == NULL ||
	    strlen(id) != AFMT_LOGID_HEX ||
	    audit_u64member(o, "epoch", &epoch) == -1 ||
	    audit_hexmember(o, "key", k, sizeof(k)) == -1 ||
	    audit_hexmember(o, "body_key", a->body_key, AFMT_KEY_LEN) == -1 ||
	    audit_u64member(o, "seal_seq", &a->seal_seq) == -1 ||
	    audit_hexmember(o, "seal_head", a->seal_head, AFMT_HASH_LEN) == -1) {
		snprintf(err, errlen, "key state %s: not a valid state file",
		    a->state_path);
		goto fail;
	}
	memcpy(a->log_id, id, AFMT_LOGID_HEX + 1);
	if (afmt_key_set(&a->key, k, epoch) == -1) {
		snprintf(err, errlen, "key state: OpenSSL HMAC unavailable");
		goto fail;
	}
	rc = 0;
fail:
	OPENSSL_cleanse(k, sizeof(k));
	json_object_put(o);
	secret_free(buf, len + 1);
	return rc;
}

/* K0 (afmt_read_k0), for a new log or cmgate -t. */
int
audit_read_k0(const char *path, unsigned char k0[AFMT_KEY_LEN], char *err,
    size_t errlen)
{
	char e2[256];

	if (path == NULL) {
		snprintf(err, errlen, "audit.key_file is not set");
		return -1;
	}
	if (afmt_read_k0(path, k0, e2, sizeof(e2)) == -1) {
		snprintf(err, errlen, "initial key: %s", e2);
		return -1;
	}
	return 0;
}
