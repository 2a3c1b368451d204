/*
 * iso3166.c: lookups over the generated ISO 3166 tables (see
 * iso3166.h).
 *
 * The tables come sorted from scripts/gen-iso.sh in strcmp order, so
 * each lookup is a bsearch; the subdivisions of one country are one
 * contiguous, sorted run of iso_subdivisions.
 */
#include <stdlib.h>
#include <string.h>

#include "iso3166.h"

static int
cmp_a3(const void *key, const void *elem)
{
	const struct iso_country *c = elem;

	return strcmp(key, c->a3);
}

static int
cmp_a2(const void *key, const void *elem)
{
	const unsigned short *ix = elem;

	return strcmp(key, iso_countries[*ix].a2);
}

static int
cmp_sub(const void *key, const void *elem)
{
	return strcmp(key, elem);
}

const struct iso_country *
iso_country_by_alpha3(const char *a3)
{
	if (a3 == NULL || strlen(a3) != 3)
		return NULL;
	return bsearch(a3, iso_countries, iso_ncountries,
	    sizeof(iso_countries[0]), cmp_a3);
}

const struct iso_country *
iso_country_by_alpha2(const char *a2)
{
	const unsigned short	*ix;

	if (a2 == NULL || strlen(a2) != 2)
		return NULL;
	ix = bsearch(a2, iso_by_alpha2, iso_ncountries,
	    sizeof(iso_by_alpha2[0]), cmp_a2);
	return ix != NULL ? &iso_countries[*ix] : NULL;
}

/* Upper-case n ASCII letters of s into key[n + 1]; -1 on anything else. */
static int
upcase_letters(const char *s, size_t n, char *key)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (ch < 'A' || ch > 'Z')
			return -1;
		key[i] = ch;
	}
	key[n] = '\0';
	return 0;
}

const struct iso_country *
iso_country_lookup(const char *code)
{
	char	key[4];
	size_t	n;

	if (code == NULL || ((n = strlen(code)) != 2 && n != 3) ||
	    upcase_letters(code, n, key) == -1)
		return NULL;
	return n == 2 ? iso_country_by_alpha2(key) : iso_country_by_alpha3(key);
}

/*
 * Split at the first '-' (a prefix is 2 or 3 letters; suffixes never
 * hold one, so "ARG-BB-B" is simply unknown), check the prefix names c, upper-case the suffix and look
 * it up in c's run.
 */
int
iso_subdivision_norm(const struct iso_country *c, const char *code,
    size_t len, char out[ISO_SUBDIV_BUF], enum iso_sub_why *why)
{
	const char			*dash, *sfx = code;
	const struct iso_country	*pc;
	char				 pre[4], key[4];
	size_t				 plen, slen = len, i;

	*why = ISO_SUB_UNKNOWN;
	if (c == NULL || code == NULL || len == 0 ||
	    memchr(code, '\0', len) != NULL)
		return -1;
	if ((dash = memchr(code, '-', len)) != NULL) {
		plen = (size_t)(dash - code);
		if (plen != 2 && plen != 3)
			return -1;
		if (upcase_letters(code, plen, pre) == -1 ||
		    (pc = plen == 2 ? iso_country_by_alpha2(pre) :
		    iso_country_by_alpha3(pre)) != c) {
			*why = ISO_SUB_PREFIX;
			return -1;
		}
		sfx = dash + 1;
		slen = len - plen - 1;
	}
	if (c->sub_n == 0) {
		*why = ISO_SUB_NONE;
		return -1;
	}
	if (slen < 1 || slen > 3)
		return -1;
	for (i = 0; i < slen; i++) {
		char ch = sfx[i];

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (!(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9'))
			return -1;
		key[i] = ch;
	}
	key[slen] = '\0';
	if (bsearch(key, iso_subdivisions[c->sub_first], c->sub_n,
	    sizeof(iso_subdivisions[0]), cmp_sub) == NULL)
		return -1;
	memcpy(out, c->a3, 3);
	out[3] = '-';
	memcpy(out + 4, key, slen + 1);
	return 0;
}

/*
 * Map an alpha-2 or alpha-3 code, in any ASCII case, to the canonical
 * upper-case alpha-3 code (constant storage), or NULL.
 */
const char *
country_alpha3(const char *code)
{
	const struct iso_country *c = iso_country_lookup(code);

	return c != NULL ? c->a3 : NULL;
}
