/*
 * fingerprint: SHA-256 certificate fingerprints as text, in the colon-hex
 * form `openssl x509 -fingerprint -sha256` prints and clients pin.  Pure:
 * the digests themselves are computed by the TLS modules.
 */
#ifndef FINGERPRINT_H
#define FINGERPRINT_H

#include <stddef.h>

#define FINGERPRINT_LEN		32	/* bytes of a SHA-256 digest */
#define FINGERPRINT_TEXT_LEN	(FINGERPRINT_LEN * 3)	/* "AB:...:CD" + NUL */
#define FINGERPRINT_MAX		8	/* pins in one list */

/*
 * One fingerprint: 64 hex digits, plain or as 32 colon-separated pairs,
 * either case, optionally after openssl's "SHA256 Fingerprint=" (so its
 * output can be pasted).  Blanks around it are ignored.  -1 when malformed.
 */
int fingerprint_parse(const char *text, size_t len,
    unsigned char out[FINGERPRINT_LEN]);

/*
 * A comma-separated list of fingerprints ("" is an empty list).  On error
 * why says which item is wrong and how; returns -1.
 */
int fingerprint_parse_list(const char *text,
    unsigned char out[][FINGERPRINT_LEN], size_t max, size_t *n, char *why,
    size_t whylen);

/* "AB:CD:..." (upper case, 95 characters) into buf. */
void fingerprint_format(const unsigned char fp[FINGERPRINT_LEN], char *buf,
    size_t len);

#endif
