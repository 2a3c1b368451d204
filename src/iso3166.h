/*
 * iso3166.h: ISO 3166-1 countries and ISO 3166-2 subdivision codes.
 *
 * The data is Debian's iso-codes package, turned into constant C tables
 * at build time by scripts/gen-iso.sh (src/iso3166_data.c, generated),
 * so updating the package and rebuilding updates the codes; nothing is
 * kept by hand.  Only the officially assigned codes are there:
 * user-assigned ones such as XK/XKX (Kosovo) and reserved ones such as
 * UK or EU are absent, on purpose (CryptoMate takes ISO codes).
 *
 * Every lookup is a binary search over constant data: no allocation, no
 * state, safe from any thread.
 */
#ifndef CMGATE_ISO3166_H
#define CMGATE_ISO3166_H

#include <stddef.h>

struct iso_country {
	char		 a2[3];		/* "AR" */
	char		 a3[4];		/* "ARG" */
	char		 numeric[4];	/* "032" */
	const char	*name;		/* "Argentina" (UTF-8) */
	unsigned short	 sub_first;	/* its run in iso_subdivisions */
	unsigned short	 sub_n;		/* 0: no ISO 3166-2 subdivisions */
};

/* The generated tables (src/iso3166_data.c). */
extern const struct iso_country	iso_countries[];	/* by alpha-3 */
extern const size_t		iso_ncountries;
extern const unsigned short	iso_by_alpha2[];	/* indexes, by a2 */
extern const char		iso_subdivisions[][4];	/* suffixes */
extern const size_t		iso_nsubdivisions;

/* Longest subdivision code in the alpha-3 form, "ARG-XXX", plus NUL. */
#define ISO_SUBDIV_BUF	8

/* Exactly "AR" / "ARG", upper-case ASCII; NULL when not assigned. */
const struct iso_country *iso_country_by_alpha2(const char *a2);
const struct iso_country *iso_country_by_alpha3(const char *a3);

/*
 * An alpha-2 or alpha-3 code in any ASCII case ("ar", "Arg"); NULL when
 * it is not exactly two or three letters or not assigned.
 */
const struct iso_country *iso_country_lookup(const char *code);

/* The same lookup, as the canonical upper-case alpha-3 code (constant
 * storage), or NULL. */
const char	*country_alpha3(const char *code);

/*
 * Is code[0..len) a subdivision of country c?  Accepted forms, ASCII
 * case-insensitive: "ARG-B" (alpha-3 prefix, CryptoMate's example form),
 * "AR-B" (the ISO 3166-2 form) and "B" (the bare suffix).  A prefix
 * must name c itself.  On success writes the canonical "ARG-B" form to
 * out[ISO_SUBDIV_BUF] and returns 0; otherwise -1 with *why set to
 * ISO_SUB_PREFIX (a prefix naming another or no country),
 * ISO_SUB_NONE (c has no subdivisions at all) or ISO_SUB_UNKNOWN.
 */
enum iso_sub_why { ISO_SUB_UNKNOWN = 1, ISO_SUB_PREFIX, ISO_SUB_NONE };
int		iso_subdivision_norm(const struct iso_country *c,
		    const char *code, size_t len, char out[ISO_SUBDIV_BUF],
		    enum iso_sub_why *why);

#endif
