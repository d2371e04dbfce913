/*
 * authwatch: SCRAM channel binding across the gate, as pure code.  Watches
 * the authentication exchange after the StartupMessage, in both directions,
 * and says what the relay must do with the bytes until it is over.
 */
#ifndef AUTHWATCH_H
#define AUTHWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The mechanism a PostgreSQL server over TLS offers first (RFC 5802/7677). */
#define AUTHWATCH_SCRAM_PLUS	"SCRAM-SHA-256-PLUS"

/* Backend message types and Authentication request codes looked at. */
#define AUTHWATCH_MSG_AUTH	'R'
#define AUTHWATCH_MSG_ERROR	'E'
#define AUTHWATCH_MSG_PASSWORD	'p'	/* also SASLInitialResponse */
#define AUTHWATCH_AUTH_OK	0u
#define AUTHWATCH_AUTH_SASL	10u

/*
 * The longest message held back until it is complete.  PostgreSQL's
 * AuthenticationSASL is 43 bytes, a SASLInitialResponse under 100; a
 * longer message is passed on as it arrives, unmodified (the client then
 * sees what it would without the gate).
 */
#define AUTHWATCH_HOLD_MAX	1024u

enum authwatch_mode {
	AUTHWATCH_OFF,		/* nothing to do: not created */
	/*
	 * The client's leg is plaintext, the backend's TLS: the backend offers
	 * SCRAM-SHA-256-PLUS, which libpq refuses on a connection without
	 * TLS.  The offer is removed; the client takes SCRAM-SHA-256 with
	 * gs2 flag 'n', which the backend accepts.
	 */
	AUTHWATCH_STRIP_PLUS,
	/*
	 * TLS on both legs with different certificates: a client binding to
	 * the gate's certificate fails the backend's check.  Such a client is
	 * refused with a reason before anything reaches the backend.
	 */
	AUTHWATCH_REFUSE_PLUS,
};

enum authwatch_dir {
	AUTHWATCH_FROM_BACKEND = 0,
	AUTHWATCH_FROM_CLIENT = 1,
};

enum authwatch_verdict {
	AUTHWATCH_PASS,		/* send *out as it is */
	AUTHWATCH_HOLD,		/* input kept back; nothing to send yet */
	AUTHWATCH_REWRITE,	/* send *out: a message, changed */
	AUTHWATCH_REFUSE,	/* the client chose SCRAM-SHA-256-PLUS */
};

/* One direction: the message being held, or the rest of one passing. */
struct authwatch_side {
	uint8_t		buf[AUTHWATCH_HOLD_MAX];
	size_t		have;		/* bytes of the current message held */
	uint32_t	skip;		/* of a longer message, still to pass */
	uint8_t		skip_type;	/* ... and its type */
	bool		done;		/* nothing more to look at this way */
};

struct authwatch {
	enum authwatch_mode	mode;
	bool			plus_offered;	/* AuthenticationSASL named PLUS */
	bool			stripped;	/* the PLUS offer was removed */
	bool			oversize;	/* a message too long to hold */
	struct authwatch_side	side[2];	/* [enum authwatch_dir] */
};

/* Start watching a session's authentication in mode (not AUTHWATCH_OFF). */
void authwatch_init(struct authwatch *, enum authwatch_mode);

/*
 * Take in bytes that came from dir.  One call looks at one piece: *used
 * says how many of the n bytes it took, and *out (*outlen bytes) what to
 * send on now (bytes of the input, or of a message held in w; valid until
 * the next call).  Call again with the rest until all n are used.  Message
 * boundaries may fall anywhere.  After AUTHWATCH_REFUSE, nothing is to be
 * sent and the watcher is not to be fed again.
 */
enum authwatch_verdict authwatch_feed(struct authwatch *, enum authwatch_dir,
    const uint8_t *p, size_t n, size_t *used, const uint8_t **out,
    size_t *outlen);

/*
 * Authentication is over (AuthenticationOk or an ErrorResponse from the
 * backend, or neither direction has anything left to look at): the relay
 * may drop the watcher once it has sent what authwatch_held() returns.
 */
bool authwatch_active(const struct authwatch *);

/* Bytes from dir held back (a message begun), to be sent before dropping. */
const uint8_t *authwatch_held(struct authwatch *, enum authwatch_dir,
    size_t *len);

#endif
