/*
 * caller.c: bearer-token authentication of callers.
 */
#include "caller.h"
#include "conf.h"
#include "util.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define TOKEN_MAX 512

const struct conf_caller *
caller_auth(const struct config *c, const char *authorization)
{
	unsigned char h[SHA256_LEN];
	const struct conf_caller *found = NULL;
	const char *tok;
	size_t i, n;

	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7))
		return NULL;
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	n = strlen(tok);
	while (n > 0 && tok[n - 1] == ' ')
		n--;
	if (n == 0 || n > TOKEN_MAX || sha256(tok, n, h) == -1)
		return NULL;
	/* Compare against every caller, not stopping at a match, so the
	 * time taken says nothing about which token matched. */
	for (i = 0; i < c->ncallers; i++)
		if (CRYPTO_memcmp(h, c->callers[i].token_sha256,
		    SHA256_LEN) == 0)
			found = &c->callers[i];
	OPENSSL_cleanse(h, sizeof(h));
	return found;
}
