/*
 * countries.c: ISO 3166-1 country codes, alpha-2 and alpha-3.
 *
 * The 249 officially assigned codes, generated once from Debian's
 * iso-codes 4.15.0 (/usr/share/iso-codes/json/iso_3166-1.json), which
 * tracks the ISO 3166 Maintenance Agency.  User-assigned codes such as
 * XK/XKX (Kosovo) and reserved ones such as UK or EU are deliberately
 * absent: the upstream API takes ISO codes, and guessing what it does
 * with the others would only move the rejection there.
 *
 * Both tables are sorted so that a lookup is a binary search over
 * constant data: no allocation, no state, safe from any thread.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

struct country {
	char	a2[3];
	char	a3[4];
};

/* Sorted by alpha-2 (strcmp order); maps it to alpha-3. */
static const struct country by_alpha2[] = {
	{ "AD", "AND" },	/* Andorra */
	{ "AE", "ARE" },	/* United Arab Emirates */
	{ "AF", "AFG" },	/* Afghanistan */
	{ "AG", "ATG" },	/* Antigua and Barbuda */
	{ "AI", "AIA" },	/* Anguilla */
	{ "AL", "ALB" },	/* Albania */
	{ "AM", "ARM" },	/* Armenia */
	{ "AO", "AGO" },	/* Angola */
	{ "AQ", "ATA" },	/* Antarctica */
	{ "AR", "ARG" },	/* Argentina */
	{ "AS", "ASM" },	/* American Samoa */
	{ "AT", "AUT" },	/* Austria */
	{ "AU", "AUS" },	/* Australia */
	{ "AW", "ABW" },	/* Aruba */
	{ "AX", "ALA" },	/* Aland Islands */
	{ "AZ", "AZE" },	/* Azerbaijan */
	{ "BA", "BIH" },	/* Bosnia and Herzegovina */
	{ "BB", "BRB" },	/* Barbados */
	{ "BD", "BGD" },	/* Bangladesh */
	{ "BE", "BEL" },	/* Belgium */
	{ "BF", "BFA" },	/* Burkina Faso */
	{ "BG", "BGR" },	/* Bulgaria */
	{ "BH", "BHR" },	/* Bahrain */
	{ "BI", "BDI" },	/* Burundi */
	{ "BJ", "BEN" },	/* Benin */
	{ "BL", "BLM" },	/* Saint Barthelemy */
	{ "BM", "BMU" },	/* Bermuda */
	{ "BN", "BRN" },	/* Brunei Darussalam */
	{ "BO", "BOL" },	/* Bolivia */
	{ "BQ", "BES" },	/* Bonaire, Sint Eustatius and Saba */
	{ "BR", "BRA" },	/* Brazil */
	{ "BS", "BHS" },	/* Bahamas */
	{ "BT", "BTN" },	/* Bhutan */
	{ "BV", "BVT" },	/* Bouvet Island */
	{ "BW", "BWA" },	/* Botswana */
	{ "BY", "BLR" },	/* Belarus */
	{ "BZ", "BLZ" },	/* Belize */
	{ "CA", "CAN" },	/* Canada */
	{ "CC", "CCK" },	/* Cocos (Keeling) Islands */
	{ "CD", "COD" },	/* Congo, The Democratic Republic of the */
	{ "CF", "CAF" },	/* Central African Republic */
	{ "CG", "COG" },	/* Congo */
	{ "CH", "CHE" },	/* Switzerland */
	{ "CI", "CIV" },	/* Cote d'Ivoire */
	{ "CK", "COK" },	/* Cook Islands */
	{ "CL", "CHL" },	/* Chile */
	{ "CM", "CMR" },	/* Cameroon */
	{ "CN", "CHN" },	/* China */
	{ "CO", "COL" },	/* Colombia */
	{ "CR", "CRI" },	/* Costa Rica */
	{ "CU", "CUB" },	/* Cuba */
	{ "CV", "CPV" },	/* Cabo Verde */
	{ "CW", "CUW" },	/* Curacao */
	{ "CX", "CXR" },	/* Christmas Island */
	{ "CY", "CYP" },	/* Cyprus */
	{ "CZ", "CZE" },	/* Czechia */
	{ "DE", "DEU" },	/* Germany */
	{ "DJ", "DJI" },	/* Djibouti */
	{ "DK", "DNK" },	/* Denmark */
	{ "DM", "DMA" },	/* Dominica */
	{ "DO", "DOM" },	/* Dominican Republic */
	{ "DZ", "DZA" },	/* Algeria */
	{ "EC", "ECU" },	/* Ecuador */
	{ "EE", "EST" },	/* Estonia */
	{ "EG", "EGY" },	/* Egypt */
	{ "EH", "ESH" },	/* Western Sahara */
	{ "ER", "ERI" },	/* Eritrea */
	{ "ES", "ESP" },	/* Spain */
	{ "ET", "ETH" },	/* Ethiopia */
	{ "FI", "FIN" },	/* Finland */
	{ "FJ", "FJI" },	/* Fiji */
	{ "FK", "FLK" },	/* Falkland Islands (Malvinas) */
	{ "FM", "FSM" },	/* Micronesia, Federated States of */
	{ "FO", "FRO" },	/* Faroe Islands */
	{ "FR", "FRA" },	/* France */
	{ "GA", "GAB" },	/* Gabon */
	{ "GB", "GBR" },	/* United Kingdom */
	{ "GD", "GRD" },	/* Grenada */
	{ "GE", "GEO" },	/* Georgia */
	{ "GF", "GUF" },	/* French Guiana */
	{ "GG", "GGY" },	/* Guernsey */
	{ "GH", "GHA" },	/* Ghana */
	{ "GI", "GIB" },	/* Gibraltar */
	{ "GL", "GRL" },	/* Greenland */
	{ "GM", "GMB" },	/* Gambia */
	{ "GN", "GIN" },	/* Guinea */
	{ "GP", "GLP" },	/* Guadeloupe */
	{ "GQ", "GNQ" },	/* Equatorial Guinea */
	{ "GR", "GRC" },	/* Greece */
	{ "GS", "SGS" },	/* South Georgia and the South Sandwich I... */
	{ "GT", "GTM" },	/* Guatemala */
	{ "GU", "GUM" },	/* Guam */
	{ "GW", "GNB" },	/* Guinea-Bissau */
	{ "GY", "GUY" },	/* Guyana */
	{ "HK", "HKG" },	/* Hong Kong */
	{ "HM", "HMD" },	/* Heard Island and McDonald Islands */
	{ "HN", "HND" },	/* Honduras */
	{ "HR", "HRV" },	/* Croatia */
	{ "HT", "HTI" },	/* Haiti */
	{ "HU", "HUN" },	/* Hungary */
	{ "ID", "IDN" },	/* Indonesia */
	{ "IE", "IRL" },	/* Ireland */
	{ "IL", "ISR" },	/* Israel */
	{ "IM", "IMN" },	/* Isle of Man */
	{ "IN", "IND" },	/* India */
	{ "IO", "IOT" },	/* British Indian Ocean Territory */
	{ "IQ", "IRQ" },	/* Iraq */
	{ "IR", "IRN" },	/* Iran */
	{ "IS", "ISL" },	/* Iceland */
	{ "IT", "ITA" },	/* Italy */
	{ "JE", "JEY" },	/* Jersey */
	{ "JM", "JAM" },	/* Jamaica */
	{ "JO", "JOR" },	/* Jordan */
	{ "JP", "JPN" },	/* Japan */
	{ "KE", "KEN" },	/* Kenya */
	{ "KG", "KGZ" },	/* Kyrgyzstan */
	{ "KH", "KHM" },	/* Cambodia */
	{ "KI", "KIR" },	/* Kiribati */
	{ "KM", "COM" },	/* Comoros */
	{ "KN", "KNA" },	/* Saint Kitts and Nevis */
	{ "KP", "PRK" },	/* North Korea */
	{ "KR", "KOR" },	/* South Korea */
	{ "KW", "KWT" },	/* Kuwait */
	{ "KY", "CYM" },	/* Cayman Islands */
	{ "KZ", "KAZ" },	/* Kazakhstan */
	{ "LA", "LAO" },	/* Laos */
	{ "LB", "LBN" },	/* Lebanon */
	{ "LC", "LCA" },	/* Saint Lucia */
	{ "LI", "LIE" },	/* Liechtenstein */
	{ "LK", "LKA" },	/* Sri Lanka */
	{ "LR", "LBR" },	/* Liberia */
	{ "LS", "LSO" },	/* Lesotho */
	{ "LT", "LTU" },	/* Lithuania */
	{ "LU", "LUX" },	/* Luxembourg */
	{ "LV", "LVA" },	/* Latvia */
	{ "LY", "LBY" },	/* Libya */
	{ "MA", "MAR" },	/* Morocco */
	{ "MC", "MCO" },	/* Monaco */
	{ "MD", "MDA" },	/* Moldova */
	{ "ME", "MNE" },	/* Montenegro */
	{ "MF", "MAF" },	/* Saint Martin (French part) */
	{ "MG", "MDG" },	/* Madagascar */
	{ "MH", "MHL" },	/* Marshall Islands */
	{ "MK", "MKD" },	/* North Macedonia */
	{ "ML", "MLI" },	/* Mali */
	{ "MM", "MMR" },	/* Myanmar */
	{ "MN", "MNG" },	/* Mongolia */
	{ "MO", "MAC" },	/* Macao */
	{ "MP", "MNP" },	/* Northern Mariana Islands */
	{ "MQ", "MTQ" },	/* Martinique */
	{ "MR", "MRT" },	/* Mauritania */
	{ "MS", "MSR" },	/* Montserrat */
	{ "MT", "MLT" },	/* Malta */
	{ "MU", "MUS" },	/* Mauritius */
	{ "MV", "MDV" },	/* Maldives */
	{ "MW", "MWI" },	/* Malawi */
	{ "MX", "MEX" },	/* Mexico */
	{ "MY", "MYS" },	/* Malaysia */
	{ "MZ", "MOZ" },	/* Mozambique */
	{ "NA", "NAM" },	/* Namibia */
	{ "NC", "NCL" },	/* New Caledonia */
	{ "NE", "NER" },	/* Niger */
	{ "NF", "NFK" },	/* Norfolk Island */
	{ "NG", "NGA" },	/* Nigeria */
	{ "NI", "NIC" },	/* Nicaragua */
	{ "NL", "NLD" },	/* Netherlands */
	{ "NO", "NOR" },	/* Norway */
	{ "NP", "NPL" },	/* Nepal */
	{ "NR", "NRU" },	/* Nauru */
	{ "NU", "NIU" },	/* Niue */
	{ "NZ", "NZL" },	/* New Zealand */
	{ "OM", "OMN" },	/* Oman */
	{ "PA", "PAN" },	/* Panama */
	{ "PE", "PER" },	/* Peru */
	{ "PF", "PYF" },	/* French Polynesia */
	{ "PG", "PNG" },	/* Papua New Guinea */
	{ "PH", "PHL" },	/* Philippines */
	{ "PK", "PAK" },	/* Pakistan */
	{ "PL", "POL" },	/* Poland */
	{ "PM", "SPM" },	/* Saint Pierre and Miquelon */
	{ "PN", "PCN" },	/* Pitcairn */
	{ "PR", "PRI" },	/* Puerto Rico */
	{ "PS", "PSE" },	/* Palestine, State of */
	{ "PT", "PRT" },	/* Portugal */
	{ "PW", "PLW" },	/* Palau */
	{ "PY", "PRY" },	/* Paraguay */
	{ "QA", "QAT" },	/* Qatar */
	{ "RE", "REU" },	/* Reunion */
	{ "RO", "ROU" },	/* Romania */
	{ "RS", "SRB" },	/* Serbia */
	{ "RU", "RUS" },	/* Russian Federation */
	{ "RW", "RWA" },	/* Rwanda */
	{ "SA", "SAU" },	/* Saudi Arabia */
	{ "SB", "SLB" },	/* Solomon Islands */
	{ "SC", "SYC" },	/* Seychelles */
	{ "SD", "SDN" },	/* Sudan */
	{ "SE", "SWE" },	/* Sweden */
	{ "SG", "SGP" },	/* Singapore */
	{ "SH", "SHN" },	/* Saint Helena, Ascension and Tristan da... */
	{ "SI", "SVN" },	/* Slovenia */
	{ "SJ", "SJM" },	/* Svalbard and Jan Mayen */
	{ "SK", "SVK" },	/* Slovakia */
	{ "SL", "SLE" },	/* Sierra Leone */
	{ "SM", "SMR" },	/* San Marino */
	{ "SN", "SEN" },	/* Senegal */
	{ "SO", "SOM" },	/* Somalia */
	{ "SR", "SUR" },	/* Suriname */
	{ "SS", "SSD" },	/* South Sudan */
	{ "ST", "STP" },	/* Sao Tome and Principe */
	{ "SV", "SLV" },	/* El Salvador */
	{ "SX", "SXM" },	/* Sint Maarten (Dutch part) */
	{ "SY", "SYR" },	/* Syria */
	{ "SZ", "SWZ" },	/* Eswatini */
	{ "TC", "TCA" },	/* Turks and Caicos Islands */
	{ "TD", "TCD" },	/* Chad */
	{ "TF", "ATF" },	/* French Southern Territories */
	{ "TG", "TGO" },	/* Togo */
	{ "TH", "THA" },	/* Thailand */
	{ "TJ", "TJK" },	/* Tajikistan */
	{ "TK", "TKL" },	/* Tokelau */
	{ "TL", "TLS" },	/* Timor-Leste */
	{ "TM", "TKM" },	/* Turkmenistan */
	{ "TN", "TUN" },	/* Tunisia */
	{ "TO", "TON" },	/* Tonga */
	{ "TR", "TUR" },	/* Turkiye */
	{ "TT", "TTO" },	/* Trinidad and Tobago */
	{ "TV", "TUV" },	/* Tuvalu */
	{ "TW", "TWN" },	/* Taiwan */
	{ "TZ", "TZA" },	/* Tanzania */
	{ "UA", "UKR" },	/* Ukraine */
	{ "UG", "UGA" },	/* Uganda */
	{ "UM", "UMI" },	/* United States Minor Outlying Islands */
	{ "US", "USA" },	/* United States */
	{ "UY", "URY" },	/* Uruguay */
	{ "UZ", "UZB" },	/* Uzbekistan */
	{ "VA", "VAT" },	/* Holy See (Vatican City State) */
	{ "VC", "VCT" },	/* Saint Vincent and the Grenadines */
	{ "VE", "VEN" },	/* Venezuela */
	{ "VG", "VGB" },	/* Virgin Islands, British */
	{ "VI", "VIR" },	/* Virgin Islands, U.S. */
	{ "VN", "VNM" },	/* Vietnam */
	{ "VU", "VUT" },	/* Vanuatu */
	{ "WF", "WLF" },	/* Wallis and Futuna */
	{ "WS", "WSM" },	/* Samoa */
	{ "YE", "YEM" },	/* Yemen */
	{ "YT", "MYT" },	/* Mayotte */
	{ "ZA", "ZAF" },	/* South Africa */
	{ "ZM", "ZMB" },	/* Zambia */
	{ "ZW", "ZWE" },	/* Zimbabwe */
};

/* Sorted by alpha-3 (strcmp order). */
static const char by_alpha3[][4] = {
	"ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE",
	"ARG", "ARM", "ASM", "ATA", "ATF", "ATG", "AUS", "AUT",
	"AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR",
	"BHR", "BHS", "BIH", "BLM", "BLR", "BLZ", "BMU", "BOL",
	"BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF", "CAN",
	"CCK", "CHE", "CHL", "CHN", "CIV", "CMR", "COD", "COG",
	"COK", "COL", "COM", "CPV", "CRI", "CUB", "CUW", "CXR",
	"CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM",
	"DZA", "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH",
	"FIN", "FJI", "FLK", "FRA", "FRO", "FSM", "GAB", "GBR",
	"GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB",
	"GNQ", "GRC", "GRD", "GRL", "GTM", "GUF", "GUM", "GUY",
	"HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN",
	"IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA",
	"JAM", "JEY", "JOR", "JPN", "KAZ", "KEN", "KGZ", "KHM",
	"KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY",
	"LCA", "LIE", "LKA", "LSO", "LTU", "LUX", "LVA", "MAC",
	"MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX", "MHL",
	"MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ",
	"MRT", "MSR", "MTQ", "MUS", "MWI", "MYS", "MYT", "NAM",
	"NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR",
	"NPL", "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER",
	"PHL", "PLW", "PNG", "POL", "PRI", "PRK", "PRT", "PRY",
	"PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU",
	"SDN", "SEN", "SGP", "SGS", "SHN", "SJM", "SLB", "SLE",
	"SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR",
	"SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA",
	"TCD", "TGO", "THA", "TJK", "TKL", "TKM", "TLS", "TON",
	"TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR",
	"UMI", "URY", "USA", "UZB", "VAT", "VCT", "VEN", "VGB",
	"VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF", "ZMB",
	"ZWE",
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static int
cmp_alpha2(const void *key, const void *elem)
{
	const struct country *c = elem;

	return strcmp(key, c->a2);
}

static int
cmp_alpha3(const void *key, const void *elem)
{
	return strcmp(key, elem);
}

/*
 * Map an alpha-2 or alpha-3 code, in any ASCII case, to the canonical
 * upper-case alpha-3 code.  The result points into constant storage.
 * Anything that is not exactly two or three ASCII letters is NULL.
 */
const char *
country_alpha3(const char *code)
{
	char			 key[4];
	size_t			 n;
	const struct country	*c;
	const char		*a3;

	if (code == NULL)
		return NULL;
	for (n = 0; n < 3 && code[n] != '\0'; n++) {
		char ch = code[n];

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (ch < 'A' || ch > 'Z')
			return NULL;
		key[n] = ch;
	}
	if (code[n] != '\0' || n < 2)
		return NULL;
	key[n] = '\0';

	if (n == 2) {
		c = bsearch(key, by_alpha2, NELEM(by_alpha2),
		    sizeof(by_alpha2[0]), cmp_alpha2);
		return c != NULL ? c->a3 : NULL;
	}
	a3 = bsearch(key, by_alpha3, NELEM(by_alpha3), sizeof(by_alpha3[0]),
	    cmp_alpha3);
	return a3;
}

/*
 * Map an alpha-2 or alpha-3 code, in any ASCII case, to the canonical
 * upper-case alpha-2 code (the form CryptoMate's identifications path
 * takes), or NULL.
 */
const char *
country_alpha2(const char *code)
{
	const char *a3 = country_alpha3(code);
	size_t i;

	if (a3 == NULL)
		return NULL;
	for (i = 0; i < NELEM(by_alpha2); i++)
		if (strcmp(by_alpha2[i].a3, a3) == 0)
			return by_alpha2[i].a2;
	return NULL;
}
