/*
 * fingerprint: reading and writing SHA-256 fingerprints.  Both forms people
 * copy around are accepted: openssl's colon pairs and a bare hex string.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fingerprint.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
fingerprint_parse(const char *text, size_t len,
    unsigned char out[FINGERPRINT_LEN])
{
	static const char	 prefix[] = "SHA256 Fingerprint=";
	const char		*p = text, *end = text + len;
	bool			 colons;

	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	if ((size_t)(end - p) > sizeof(prefix) - 1 &&
	    strncasecmp(p, prefix, sizeof(prefix) - 1) == 0)
		p += sizeof(prefix) - 1;
	/* Exactly one of the two shapes; no partial or doubled colons. */
	if (end - p == FINGERPRINT_LEN * 2)
		colons = false;
	else if (end - p == FINGERPRINT_LEN * 3 - 1)
		colons = true;
	else
		return -1;
	for (size_t i = 0; i < FINGERPRINT_LEN; i++) {
		int	hi = hexval((unsigned char)p[0]);
		int	lo = hexval((unsigned char)p[1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
		p += 2;
		if (colons && i + 1 < FINGERPRINT_LEN && *p++ != ':')
			return -1;
	}
	return 0;
}

int
fingerprint_parse_list(const char *text, unsigned char out[][FINGERPRINT_LEN],
    size_t max, size_t *n, char *why, size_t whylen)
{
	const char	*p = text;
	size_t		 count = 0;

	*n = 0;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		const char	*comma = strchr(p, ',');
		size_t		 len = comma != NULL ? (size_t)(comma - p) :
				    strlen(p);

		if (count == max) {
			snprintf(why, whylen, "more than %zu fingerprints", max);
			return -1;
		}
		if (fingerprint_parse(p, len, out[count]) != 0) {
			snprintf(why, whylen, "item %zu is not a SHA-256 "
			    "fingerprint (64 hex digits, plain or as "
			    "AB:CD:... pairs)", count + 1);
			return -1;
		}
		count++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*n = count;
	return 0;
}

void
fingerprint_format(const unsigned char fp[FINGERPRINT_LEN], char *buf,
    size_t len)
{
	static const char	hex[] = "0123456789ABCDEF";

	if (len == 0)
		return;
	buf[0] = '\0';
	if (len < FINGERPRINT_TEXT_LEN)
		return;		/* never half a fingerprint */
	for (size_t i = 0; i < FINGERPRINT_LEN; i++) {
		buf[i * 3] = hex[fp[i] >> 4];
		buf[i * 3 + 1] = hex[fp[i] & 0xf];
		buf[i * 3 + 2] = ':';
	}
	buf[FINGERPRINT_TEXT_LEN - 1] = '\0';
}
