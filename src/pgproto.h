/*
 * pgproto: the startup phase of the PostgreSQL wire protocol, as pure code.
 * Parses the untyped packets a client sends before authentication and builds
 * the few replies the proxy itself sends.  No I/O happens here.
 */
#ifndef PGPROTO_H
#define PGPROTO_H

#include <stddef.h>
#include <stdint.h>

/* Request codes live where a StartupMessage keeps its protocol version. */
#define PGPROTO_CANCEL_REQUEST_CODE	80877102u	/* 1234.5678 */
#define PGPROTO_SSL_REQUEST_CODE	80877103u	/* 1234.5679 */
#define PGPROTO_GSSENC_REQUEST_CODE	80877104u	/* 1234.5680 */

/*
 * A TLS record of type handshake: the first byte of a ClientHello, and of
 * PostgreSQL 17's direct SSL (sslnegotiation=direct).  No StartupMessage
 * can start with it: its length would exceed the limit.
 */
#define PGPROTO_TLS_HANDSHAKE_BYTE	0x16

/* ALPN protocol name PostgreSQL 17 requires for direct SSL. */
#define PGPROTO_ALPN			"postgresql"

/* The server's reply to SSLRequest / GSSENCRequest. */
#define PGPROTO_SSL_ACCEPT		'S'
#define PGPROTO_SSL_DECLINE		'N'

/*
 * PostgreSQL's MAX_STARTUP_PACKET_LENGTH: the payload after the length word
 * must be 4..10000 bytes.
 */
#define PGPROTO_MIN_PAYLOAD		4u
#define PGPROTO_MAX_PAYLOAD		10000u
#define PGPROTO_HEADER_LEN		4u
#define PGPROTO_MAX_PACKET		(PGPROTO_HEADER_LEN + PGPROTO_MAX_PAYLOAD)

/*
 * CancelRequest: length, code, process id, then the secret key.  Protocol 3.0
 * keys are 4 bytes; protocol 3.2 allows up to 256.
 */
#define PGPROTO_CANCEL_MIN_LEN		16u
#define PGPROTO_CANCEL_MAX_KEY		256u
#define PGPROTO_CANCEL_MAX_LEN		(12u + PGPROTO_CANCEL_MAX_KEY)

#define PGPROTO_MAJOR(v)		((v) >> 16)
#define PGPROTO_MINOR(v)		((v) & 0xffffu)
#define PGPROTO_VERSION_MAJOR_3		3u

/* Longest user/database name kept for logging; longer ones are truncated. */
#define PGPROTO_NAME_MAX		64

enum pgproto_kind {
	PGPROTO_STARTUP,
	PGPROTO_SSL_REQUEST,
	PGPROTO_GSSENC_REQUEST,
	PGPROTO_CANCEL_REQUEST,
};

enum pgproto_status {
	PGPROTO_INCOMPLETE,		/* need more bytes */
	PGPROTO_OK,			/* one whole packet parsed */
	PGPROTO_BAD_LENGTH,		/* length word outside the allowed range */
	PGPROTO_BAD_LAYOUT,		/* parameters not NUL-terminated pairs */
	PGPROTO_BAD_VERSION,		/* protocol major version not 3 */
	PGPROTO_BAD_REQUEST,		/* unknown 1234.xxxx code or wrong size */
	PGPROTO_NO_USER,		/* StartupMessage without "user" */
};

struct pgproto_packet {
	enum pgproto_kind	kind;
	uint32_t		length;	/* whole packet, length word included */
	uint32_t		code;	/* protocol version or request code */
	uint32_t		cancel_pid;
	char			user[PGPROTO_NAME_MAX];
	char			database[PGPROTO_NAME_MAX];
};

/*
 * Parse the packet at the start of buf.  On PGPROTO_INCOMPLETE, pkt->length
 * holds the total length once the length word has arrived (0 before), so the
 * caller knows how much to wait for.  pkt is filled only on PGPROTO_OK.
 */
enum pgproto_status pgproto_parse_startup(const uint8_t *buf, size_t len,
    struct pgproto_packet *pkt);

/* SQLSTATE and message for a parse failure, as PostgreSQL words them. */
const char *pgproto_status_sqlstate(enum pgproto_status);
const char *pgproto_status_message(enum pgproto_status);

/*
 * Build a FATAL ErrorResponse into buf.  detail may be NULL.  Returns the
 * encoded length; if that exceeds cap nothing useful was written (like
 * snprintf).  Fields longer than 1024 bytes are truncated.
 */
size_t pgproto_build_error(uint8_t *buf, size_t cap, const char *sqlstate,
    const char *message, const char *detail);

/*
 * Copy field `type` ('M', 'C', ...) of the ErrorResponse at buf (type byte
 * and length included; len may cover only part of it) into out, as a C
 * string.  Returns -1 when the field is not (yet) there.
 */
int pgproto_error_field(const uint8_t *buf, size_t len, char type, char *out,
    size_t outlen);

/* Largest ErrorResponse pgproto_build_error() can produce. */
#define PGPROTO_ERROR_MAX	(1 + 4 + 3 * 8 + 2 * 1025 + 1)

/* Encode a big-endian 32-bit integer (helper shared with tests). */
void pgproto_put32(uint8_t *p, uint32_t v);
uint32_t pgproto_get32(const uint8_t *p);

#endif
