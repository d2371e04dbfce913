/*
 * conn: one connection through the gate and its two sides, the client and
 * the backend.  A side owns its socket, its TLS session, its events and its
 * write queue; the connection's state says what it waits for.
 */
#ifndef CONN_H
#define CONN_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "gate.h"
#include "metrics.h"
#include "pgproto.h"
#include "pgstream.h"
#include "policy.h"
#include "startcap.h"

/*
 * A side's peer is not read while the side's queue holds this much; it is
 * read again once the queue is down to half.
 */
#define CONN_HIGH_WATER		(64 * 1024)

/*
 * The most a queue may hold.  Never reached: a side is read only while its
 * peer's queue is under CONN_HIGH_WATER, and one read is smaller than this
 * margin.  It bounds a bug, not a client.
 */
#define CONN_QUEUE_MAX		(4 * CONN_HIGH_WATER)

/* TLS records hold at most 16 KiB of data. */
#define CONN_TLS_RECORD		16384

enum conn_state {
	CONN_NEW,		/* accepted; nothing asked yet */
	CONN_FIRST_BYTE,	/* ssl_direct: a ClientHello, or the protocol? */
	CONN_WAIT_STARTUP,	/* reading startup-phase packets */
	CONN_TLS_HANDSHAKE,	/* 'S' sent (or direct SSL); client handshake */
	CONN_BACKEND_CONNECT,	/* TCP or Unix connect to the backend */
	CONN_BACKEND_SSL,	/* SSLRequest sent to the backend; 'S' or 'N'? */
	CONN_BACKEND_TLS,	/* TLS handshake with the backend */
	CONN_BACKEND_PROBE,	/* backend_sslmode=allow: plaintext startup
				   sent; an ErrorResponse means retry in TLS */
	CONN_CANCEL,		/* CancelRequest forwarded; backend to close */
	CONN_RELAY,		/* session established; bytes flow both ways */
	CONN_HALF_CLOSED,	/* client's EOF passed on; its answer flows */
	CONN_CLOSING,		/* one side left, flushing its last bytes */
	CONN_CLOSED,		/* ended; freed once the callback returns */
	CONN_NSTATES
};

/* The timers a state can wait on (each state has at most one). */
enum conn_timer {
	CONN_TIMER_NONE,
	CONN_TIMER_AUTH,	/* authentication_timeout: the startup phase */
	CONN_TIMER_CONNECT,	/* backend_connect_timeout: each backend step */
	CONN_TIMER_SILENCE,	/* half_close_timeout: the backend's silence
				   after the client's end */
	CONN_TIMER_FLUSH,	/* the last bytes of a closing connection */
};

struct authwatch;
struct cancelkey_scan;
struct side;
struct conn;

/* A side's I/O, plaintext or TLS: nginx's recv/send swap. */
#define SIDE_AGAIN	(-1)	/* nothing now; the side's events say when */
#define SIDE_ERROR	(-2)	/* side->error says why */

struct side_ops {
	ssize_t	(*recv)(struct side *, void *, size_t);	/* 0: the end */
	ssize_t	(*send)(struct side *, const void *, size_t);
	void	(*shutdown)(struct side *);	/* FIN, or close_notify */
	bool	(*pending)(const struct side *);	/* read, not handed out */
};

/* Bytes a side holds: its write queue, or startup-phase input. */
struct side_buf {
	unsigned char	*data;
	size_t		 off;
	size_t		 len;
	size_t		 cap;
};

struct side {
	struct conn		*conn;
	struct side		*peer;
	const char		*name;		/* "client", "backend" */
	const struct side_ops	*ops;
	int			 fd;		/* -1: closed */
	SSL			*ssl;		/* NULL: plaintext */
	struct event		*rd;
	struct event		*wr;
	bool			 armed_rd;
	bool			 armed_wr;
	struct side_buf		 out;		/* not yet taken by the socket */
	struct side_buf		 in;		/* startup phase: read, unused */
	size_t			 record;	/* most bytes per TLS record */
	int			 ssl_retry;	/* SSL_write to repeat, bytes */
	bool			 paused;	/* the peer's queue is full */
	bool			 read_wants_write;	/* OpenSSL must send
							   before it reads */
	bool			 write_wants_read;
	bool			 eof;		/* the stream's end was read */
	bool			 shut_pending;	/* shut once the queue empties */
	bool			 shut;		/* FIN or close_notify sent */
	bool			 broken;	/* a write failed: error[] */
	struct pgstream		 msgs;		/* in session: its messages */
	int			 errnum;	/* errno of the failure, or 0 */
	char			 error[256];
};

/*
 * What the module in charge of a state is told: client.c in the startup
 * phase, backend.c while it reaches the backend, relay.c in session.  Each
 * is handed to conn_set_state() with the state.
 */
struct conn_phase {
	/* What the state waits for on s happened (readable, connected). */
	void	(*ready)(struct side *s);
	/* Writing s's queue failed: s->error. */
	void	(*failed)(struct side *s);
	/* The state's timer, or authentication_timeout, expired. */
	void	(*timeout)(struct conn *, enum conn_timer);
};

struct conn {
	TAILQ_ENTRY(conn)	 entry;
	struct worker		*worker;	/* whose loop owns it */
	struct snapshot		*snap;
	const struct gate_route	*route;		/* in snap: the SNI name's */
	const char		*sni;		/* label: a hosts_file name,
						   "*", or "none" */
	struct cancelkey_scan	*keyscan;	/* ssl_sni: BackendKeyData */
	int			 cancel_slot;	/* cancelkey_add()'s, or -1 */
	struct gate_route	*cancel_route;	/* a cancel's, looked up */
	enum conn_state		 state;		/* changed by conn_set_state */
	const struct conn_phase	*phase;
	struct policy_state	 policy;
	struct side		 client;
	struct side		 backend;
	struct event		*timer;		/* the state's own */
	struct event		*auth_timer;	/* authentication_timeout */
	struct authwatch	*authwatch;	/* relay.c, until authentication
						   is over; NULL after */

	unsigned char		*startup;	/* the packet to forward */
	size_t			 startup_len;
	int			 backend_try;	/* index into snap->backend */
	uint8_t			 backend_want_tls;	/* enum in backend.c */
	bool			 cancel;	/* forwarding a CancelRequest */
	bool			 direct_tls;	/* TLS without SSLRequest */
	bool			 established;	/* reached CONN_RELAY */
	bool			 over_limit;	/* accepted past max_connections */
	bool			 in_startup;	/* counted by startcap */
	bool			 asked;		/* relay.c: client bytes went to
						   the backend after its last
						   ReadyForQuery 'I' */
	struct startcap_key	 source;	/* ... under this source */

	struct sockaddr_storage	 peer;		/* client address, for hba */
	char			 host[64];	/* client address, for logs */
	char			 port[8];
	char			 user[PGPROTO_NAME_MAX];
	char			 database[PGPROTO_NAME_MAX];
	struct timeval		 started;
	uint64_t		 bytes_up;	/* client to backend */
	uint64_t		 bytes_down;	/* backend to client */
	const char		*end_reason;
	char			*verify_report;	/* why the client cert failed */
	char			*allow_refusal;	/* backend's plaintext refusal */
};

/* Who a connection is from, as the listener or a PROXY header says. */
struct conn_peer {
	const struct sockaddr	*sa;	/* the client's address */
	int			 salen;
	const char		*note;	/* NULL, or for the connection log line */
};

/*
 * Take ownership of an accepted socket: count it, and either set up a
 * connection in CONN_NEW (authentication_timeout running) or close it
 * at once when far past max_connections (NULL).
 */
struct conn *conn_new(struct worker *, int fd, const struct conn_peer *);

/*
 * Answer a socket that gets no connection state with a FATAL 53300
 * ErrorResponse and close it.  libpq reads an ErrorResponse in answer to
 * its SSLRequest too (PostgreSQL's postmaster sends one when it cannot
 * fork).  Logging and counting are the caller's.
 */
void conn_turn_away(int fd, const char *message);

/*
 * The one place a connection's state changes: arms what the new state
 * waits for, as conn.c's table says, and hands its events to phase.
 */
void conn_set_state(struct conn *, enum conn_state,
    const struct conn_phase *);

/*
 * Start the state's timer over: the backend spoke, so it is not silent
 * (CONN_TIMER_SILENCE).
 */
void conn_restart_timer(struct conn *);

/* For logs: "waiting for the startup packet". */
const char *conn_state_name(enum conn_state);

/*
 * Send a FATAL ErrorResponse, log and count the refusal, and close after
 * flushing.
 */
void conn_refuse(struct conn *, enum metrics_refusal, const char *sqlstate,
    const char *message, const char *detail);

/* authentication_timeout expired: log, count and close. */
void conn_auth_expired(struct conn *);

/*
 * End the session: close every side but survivor, then close once
 * survivor's queue is sent (survivor may be NULL: close now).
 */
void conn_close_after_flush(struct conn *, struct side *survivor);

/*
 * End the connection.  Nothing is freed before the running callback
 * returns; once closed, a connection ignores everything but its free.
 */
void conn_close(struct conn *);

/* The reaper of closed connections; close every connection at the end. */
int conn_worker_init(struct worker *);
void conn_free_all(struct worker *);

/* Side I/O, TLS or not. */

/* A non-blocking connect; 0 when under way (or done), else errno. */
int side_connect(struct side *, const struct sockaddr *, socklen_t);

/* After the connect: 0, or the error it ended with. */
int side_connect_result(struct side *);

/* From now on s speaks TLS, as the server (accept) or the client. */
void side_start_tls(struct side *, SSL *, bool server);

enum side_handshake {
	SIDE_HS_DONE,
	SIDE_HS_AGAIN,		/* the side's events go on */
	SIDE_HS_FAILED,		/* OpenSSL's queue, or s->error, says why */
};
enum side_handshake side_handshake(struct side *);

/* One read: bytes, 0 at the end, SIDE_AGAIN or SIDE_ERROR. */
ssize_t side_read(struct side *, void *, size_t);

/*
 * Read into s->in until it holds max bytes or nothing more is there: the
 * bytes added, or 0 (the end), SIDE_AGAIN, SIDE_ERROR when none were.
 */
ssize_t side_read_in(struct side *, size_t max);
void side_consume_in(struct side *, size_t);

/* Look at the first byte without taking it: 1, 0 (the end), SIDE_AGAIN. */
ssize_t side_peek(struct side *, uint8_t *);

/*
 * Send now what the socket takes, queue the rest.  A failure is reported
 * to the phase's failed() from the event loop, never here.
 */
void side_write(struct side *, const void *, size_t);
size_t side_queued(const struct side *);

/* Our end of s's stream, once its queue is sent. */
void side_shutdown(struct side *);

/* Close a side now: events, TLS session (close_notify tried), socket. */
void side_close(struct side *);

#endif
