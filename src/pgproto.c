/*
 * pgproto: startup-phase packet parsing and ErrorResponse building.  Every
 * length comes from the wire and is checked before it is used.
 */
#include <string.h>

#include "pgproto.h"

#define PGPROTO_FIELD_MAX	1024

void
pgproto_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t
pgproto_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void
copy_name(char *dst, const char *src, size_t srclen)
{
	if (srclen >= PGPROTO_NAME_MAX)
		srclen = PGPROTO_NAME_MAX - 1;
	memcpy(dst, src, srclen);
	dst[srclen] = '\0';
}

/*
 * The parameters of a StartupMessage are NUL-terminated name/value pairs
 * ended by one more NUL, which must be the packet's last byte (PostgreSQL's
 * "expected terminator as last byte").
 */
static enum pgproto_status
parse_parameters(const uint8_t *p, size_t len, struct pgproto_packet *pkt)
{
	const char	*s = (const char *)p;
	size_t		 off = 0;
	int		 have_user = 0;

	while (off < len && s[off] != '\0') {
		size_t	nlen = strnlen(s + off, len - off);
		size_t	voff = off + nlen + 1;
		size_t	vlen;

		if (voff >= len)		/* a name without a value */
			break;
		vlen = strnlen(s + voff, len - voff);
		if (vlen == len - voff)		/* value without its NUL */
			return PGPROTO_BAD_LAYOUT;
		if (nlen == 4 && memcmp(s + off, "user", 4) == 0) {
			copy_name(pkt->user, s + voff, vlen);
			have_user = vlen > 0;
		} else if (nlen == 8 && memcmp(s + off, "database", 8) == 0)
			copy_name(pkt->database, s + voff, vlen);
		off = voff + vlen + 1;
	}
	if (len == 0 || off != len - 1)
		return PGPROTO_BAD_LAYOUT;
	if (!have_user)
		return PGPROTO_NO_USER;
	/* PostgreSQL: the database name defaults to the user name. */
	if (pkt->database[0] == '\0')
		memcpy(pkt->database, pkt->user, sizeof(pkt->database));
	return PGPROTO_OK;
}

enum pgproto_status
pgproto_parse_startup(const uint8_t *buf, size_t len, struct pgproto_packet *pkt)
{
	uint32_t	plen, code;

	pkt->length = 0;
	if (len < PGPROTO_HEADER_LEN)
		return PGPROTO_INCOMPLETE;
	plen = pgproto_get32(buf);
	/* Checked before waiting for the rest: a huge length must not stall. */
	if (plen < PGPROTO_HEADER_LEN + PGPROTO_MIN_PAYLOAD ||
	    plen > PGPROTO_MAX_PACKET)
		return PGPROTO_BAD_LENGTH;
	pkt->length = plen;
	if (len < plen)
		return PGPROTO_INCOMPLETE;

	code = pgproto_get32(buf + 4);
	pkt->code = code;
	pkt->cancel_pid = 0;
	pkt->user[0] = pkt->database[0] = '\0';

	switch (code) {
	case PGPROTO_SSL_REQUEST_CODE:
	case PGPROTO_GSSENC_REQUEST_CODE:
		if (plen != 8)
			return PGPROTO_BAD_REQUEST;
		pkt->kind = code == PGPROTO_SSL_REQUEST_CODE ?
		    PGPROTO_SSL_REQUEST : PGPROTO_GSSENC_REQUEST;
		return PGPROTO_OK;
	case PGPROTO_CANCEL_REQUEST_CODE:
		if (plen < PGPROTO_CANCEL_MIN_LEN || plen > PGPROTO_CANCEL_MAX_LEN)
			return PGPROTO_BAD_REQUEST;
		pkt->kind = PGPROTO_CANCEL_REQUEST;
		pkt->cancel_pid = pgproto_get32(buf + 8);
		return PGPROTO_OK;
	default:
		break;
	}
	/* Any other 1234.xxxx code is a request we do not know. */
	if (PGPROTO_MAJOR(code) == 1234)
		return PGPROTO_BAD_REQUEST;
	if (PGPROTO_MAJOR(code) != PGPROTO_VERSION_MAJOR_3)
		return PGPROTO_BAD_VERSION;
	pkt->kind = PGPROTO_STARTUP;
	return parse_parameters(buf + 8, plen - 8, pkt);
}

const char *
pgproto_status_sqlstate(enum pgproto_status st)
{
	switch (st) {
	case PGPROTO_BAD_VERSION:
		return "0A000";		/* feature_not_supported */
	case PGPROTO_NO_USER:
		return "28000";		/* invalid_authorization_specification */
	default:
		return "08P01";		/* protocol_violation */
	}
}

const char *
pgproto_status_message(enum pgproto_status st)
{
	switch (st) {
	case PGPROTO_INCOMPLETE:
		return "incomplete startup packet";
	case PGPROTO_OK:
		return "no error";
	case PGPROTO_BAD_LENGTH:
		return "invalid length of startup packet";
	case PGPROTO_BAD_LAYOUT:
		return "invalid startup packet layout: expected terminator as last byte";
	case PGPROTO_BAD_VERSION:
		return "unsupported frontend protocol: the proxy supports protocol 3";
	case PGPROTO_BAD_REQUEST:
		return "invalid startup packet: unknown request code or size";
	case PGPROTO_NO_USER:
		return "no PostgreSQL user name specified in startup packet";
	}
	return "invalid startup packet";
}

static size_t
put_field(uint8_t *buf, size_t cap, size_t off, char type, const char *value)
{
	size_t	vlen = strnlen(value, PGPROTO_FIELD_MAX);

	if (off + 1 + vlen + 1 <= cap) {
		buf[off] = (uint8_t)type;
		memcpy(buf + off + 1, value, vlen);
		buf[off + 1 + vlen] = '\0';
	}
	return off + 1 + vlen + 1;
}

size_t
pgproto_build_error(uint8_t *buf, size_t cap, const char *sqlstate,
    const char *message, const char *detail)
{
	size_t	off = 5;

	/* 'S' is localizable; 'V' (protocol 3, PostgreSQL 9.6+) never is. */
	off = put_field(buf, cap, off, 'S', "FATAL");
	off = put_field(buf, cap, off, 'V', "FATAL");
	off = put_field(buf, cap, off, 'C', sqlstate);
	off = put_field(buf, cap, off, 'M', message);
	if (detail != NULL)
		off = put_field(buf, cap, off, 'D', detail);
	if (off + 1 <= cap)
		buf[off] = '\0';
	off++;
	if (off <= cap) {
		buf[0] = 'E';
		pgproto_put32(buf + 1, (uint32_t)(off - 1));
	}
	return off;
}

int
pgproto_error_field(const uint8_t *buf, size_t len, char type, char *out,
    size_t outlen)
{
	size_t	end, off = 5;

	if (len < 5 || buf[0] != 'E' || outlen == 0)
		return -1;
	/* Only what both the length word and the buffer cover. */
	end = 1 + (size_t)pgproto_get32(buf + 1);
	if (end > len)
		end = len;
	while (off < end && buf[off] != '\0') {
		const uint8_t	*value = buf + off + 1;
		const uint8_t	*nul = off + 1 < end ?
				    memchr(value, '\0', end - off - 1) : NULL;
		size_t		 vlen;

		if (nul == NULL)
			return -1;	/* cut off mid-field */
		vlen = (size_t)(nul - value);
		if (buf[off] == (uint8_t)type) {
			if (vlen >= outlen)
				vlen = outlen - 1;
			memcpy(out, value, vlen);
			out[vlen] = '\0';
			return 0;
		}
		off += 1 + vlen + 1;
	}
	return -1;
}
