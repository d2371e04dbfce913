/*
 * relay: bytes both ways between client and backend once the session is
 * set up, with backpressure so a slow side bounds the proxy's memory.
 */
#ifndef RELAY_H
#define RELAY_H

/*
 * Stop reading one side while the other's unsent output is at least this
 * much; resume when it falls to half.
 */
#define RELAY_HIGH_WATER	(64 * 1024)

/* TLS records hold at most 16 KiB of data; fewer, fuller records are cheaper. */
#define RELAY_RECORD	16384
/*
 * Toward clients, at most 8 KiB, as PostgreSQL sends them (its send
 * buffer): libpq reads into what is free of its 16 KiB input buffer, and a
 * non-blocking libpq client (psycopg's async connections, pg-native,
 * ruby-pg) that stops in the middle of a larger record then polls a quiet
 * socket while the rest of the record waits inside OpenSSL.
 */
#define RELAY_CLIENT_RECORD	8192
/* The most one side is read at a time (the worker's scratch buffer). */
#define RELAY_READ	(4 * RELAY_RECORD)

struct conn;

/* The backend is connected and has the StartupMessage queued. */
void relay_start(struct conn *);

/* Stop reading either side (the session is ending); idempotent. */
void relay_stop(struct conn *);

#endif
