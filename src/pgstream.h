/*
 * pgstream: where the messages are in a stream of the PostgreSQL protocol
 * after the startup packet (a type byte and a 4-byte length, then the
 * body), followed in a few bytes per direction without parsing bodies.
 */
#ifndef PGSTREAM_H
#define PGSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGSTREAM_HEADER_LEN	5u	/* type byte, then length */
#define PGSTREAM_READY_FOR_QUERY	'Z'
#define PGSTREAM_STATUS_IDLE	'I'	/* ReadyForQuery: not in a block */
/* The client's messages that the server answers with one ReadyForQuery. */
#define PGSTREAM_QUERY		'Q'
#define PGSTREAM_SYNC		'S'
#define PGSTREAM_FUNCTION_CALL	'F'

struct pgstream {
	uint32_t	left;		/* body bytes of this message to come */
	uint8_t		hdr[PGSTREAM_HEADER_LEN];
	uint8_t		have;		/* header bytes so far */
	uint8_t		type;		/* of the message in progress or last */
	char		status;		/* of the last ReadyForQuery, or 0 */
	bool		status_next;	/* the next body byte is that status */
	bool		lost;		/* a length under 4: no more framing */
	/*
	 * Messages begun: on the client's stream, those the server answers
	 * with a ReadyForQuery (Query, Sync, FunctionCall); on the server's,
	 * the ReadyForQuerys.  Read each from its own stream: 'S' is also
	 * the server's ParameterStatus.
	 */
	uint64_t	turns;
	uint64_t	readies;
};

/* Follow n more bytes of the stream. */
void pgstream_scan(struct pgstream *, const uint8_t *p, size_t n);

/* Between two messages: a message can be put in here. */
bool pgstream_at_boundary(const struct pgstream *);

/*
 * The server's side only: the stream ended with ReadyForQuery, and its
 * status says no transaction is open ('I').
 */
bool pgstream_idle(const struct pgstream *);

/*
 * How many of the n bytes at p finish the message in progress: 0 at a
 * boundary, n when it goes on past them (or the framing is lost).  The
 * bytes are not followed; pgstream_scan() does that.
 */
size_t pgstream_until_boundary(const struct pgstream *, const uint8_t *p,
    size_t n);

/*
 * The server has answered everything the client asked so far: one
 * ReadyForQuery on server for each message on client that calls for one,
 * and one more that ended the startup phase (the streams are followed from
 * the StartupMessage on).
 */
bool pgstream_answered(const struct pgstream *client,
    const struct pgstream *server);

#endif
