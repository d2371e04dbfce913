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

struct pgstream {
	uint32_t	left;		/* body bytes of this message to come */
	uint8_t		hdr[PGSTREAM_HEADER_LEN];
	uint8_t		have;		/* header bytes so far */
	uint8_t		type;		/* of the message in progress or last */
	char		status;		/* of the last ReadyForQuery, or 0 */
	bool		status_next;	/* the next body byte is that status */
	bool		lost;		/* a length under 4: no more framing */
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

#endif
