/*
 * relay: bytes both ways between client and backend once the session is
 * set up.  Backpressure is the sides' (conn.h's high-water mark); the
 * relay reads, counts and forwards.
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>

#include "conn.h"

/*
 * Toward clients, at most 8 KiB per TLS record, as PostgreSQL sends them
 * (its send buffer): libpq reads into what is free of its 16 KiB input
 * buffer, and a non-blocking libpq client (psycopg's async connections,
 * pg-native, ruby-pg) that stops in the middle of a larger record then
 * polls a quiet socket while the rest of the record waits inside OpenSSL.
 */
#define RELAY_CLIENT_RECORD	8192

/* The most one side is read at a time (the worker's scratch buffer). */
#define RELAY_READ	(4 * CONN_TLS_RECORD)

#if RELAY_READ + CONN_HIGH_WATER > CONN_QUEUE_MAX
#error "a read on top of a full queue must fit under CONN_QUEUE_MAX"
#endif

/* How a drained session ends, as PostgreSQL's own shutdown says it. */
#define RELAY_DRAIN_SQLSTATE	"57P01"
#define RELAY_DRAIN_MESSAGE	"terminating connection due to administrator command"

/* The backend is connected and has the StartupMessage queued. */
void relay_start(struct conn *);

/*
 * In session: everything relayed from side s so far ends at a message
 * boundary, so a message of the gate's own could follow (FATAL 57P01, on
 * shutdown, goes to the client only then).
 */
bool relay_at_boundary(const struct side *from);

/*
 * The backend's last message was ReadyForQuery with status 'I': no
 * transaction is open, and a session could end here without loss.
 */
bool relay_backend_idle(const struct conn *);

/*
 * The worker drains (worker->draining; worker->drain_force once
 * shutdown_timeout is over).  A session ends with FATAL 57P01 at its next
 * idle point, or now if it is at one; forced, at the next message
 * boundary toward the client.  Called for every connection when the drain
 * starts and when it is forced; the relay checks again after each read.
 */
void relay_drain(struct conn *);

/*
 * Everything ends at once (SIGINT, SIGQUIT, a second SIGTERM): where the
 * streams are between messages, one try at 57P01 to the client and
 * Terminate to the backend, before the caller closes.
 */
void relay_abort(struct conn *);

#endif
