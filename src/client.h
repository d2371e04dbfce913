/*
 * client: one client connection, from accept to close.  The startup phase is
 * an explicit state machine; once the backend answers, relay.c moves bytes.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <sys/queue.h>
#include <sys/time.h>

#include <stdbool.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "gate.h"
#include "metrics.h"
#include "pgproto.h"
#include "policy.h"
#include "startcap.h"

enum conn_state {
	CONN_WAIT_STARTUP,	/* reading startup-phase packets */
	CONN_TLS_HANDSHAKE,	/* 'S' sent; TLS handshake running */
	CONN_WAIT_BACKEND,	/* connecting to the backend */
	CONN_BACKEND_SSL,	/* SSLRequest sent to the backend; 'S' or 'N'? */
	CONN_BACKEND_TLS,	/* TLS handshake with the backend */
	CONN_BACKEND_PROBE,	/* backend_sslmode=allow: plaintext startup
				   sent; an ErrorResponse means retry in TLS */
	CONN_CANCEL,		/* CancelRequest forwarded; backend to close */
	CONN_RELAY,		/* session established; bytes flow */
	CONN_CLOSING,		/* flushing a last message, then close */
};

struct authwatch;
struct cancelkey_scan;

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
	enum conn_state		 state;
	struct policy_state	 policy;

	int			 fd;	/* owned until the TLS bufferevent takes it */
	SSL			*ssl;	/* owned by the TLS bufferevent */
	struct bufferevent	*client;
	struct bufferevent	*backend;
	SSL			*backend_ssl;	/* owned by c->backend */
	struct event		*first_byte;	/* ssl_direct: 0x16 or not? */
	struct event		*rd_client;	/* relay.c reads both sides */
	struct event		*rd_backend;	/* itself, not through libevent */
	bool			 paused[2];	/* [up]: reads held back */
	bool			 read_wants_write[2];	/* [up]: SSL_read needs
							   writability */
	bool			 client_done;	/* client half-closed (EOF) */
	bool			 backend_shut;	/* ... and that went on */
	struct authwatch	*authwatch;	/* relay.c, until authentication
						   is over; NULL after */
	struct event		*timer;	/* authentication_timeout */
	struct evbuffer		*startup;	/* the packet to forward */
	int			 backend_try;	/* index into snap->backend */

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
	bool			 cancel;	/* forwarding a CancelRequest */
	bool			 direct_tls;	/* TLS without SSLRequest */
	uint8_t			 backend_want_tls;	/* enum in backend.c */
	bool			 established;	/* reached CONN_RELAY */
	bool			 over_limit;	/* accepted beyond max_connections */
	bool			 in_startup;	/* counted by startcap */
	struct startcap_key	 source;	/* ... under this source */
};

/* Who a connection is from, as the listener or a PROXY header says. */
struct conn_peer {
	const struct sockaddr	*sa;	/* the client's address */
	int			 salen;
	const char		*note;	/* NULL, or for the connection log line */
};

/* Take ownership of an accepted socket. */
void conn_accept(struct worker *, int fd, const struct conn_peer *);

/*
 * The startup phase is over (a session, or a refusal): the connection no
 * longer counts against max_startup_connections.
 */
void conn_startup_done(struct conn *);

/*
 * Answer a socket that gets no connection state with a FATAL 53300
 * ErrorResponse and close it.  libpq reads an ErrorResponse in answer to
 * its SSLRequest too (PostgreSQL's postmaster sends one when it cannot
 * fork).  Logging and counting are the caller's.
 */
void conn_turn_away(int fd, const char *message);

/*
 * Send a FATAL ErrorResponse, log and count the refusal, and close after
 * flushing.
 */
void conn_refuse(struct conn *, enum metrics_refusal, const char *sqlstate,
    const char *message, const char *detail);

/*
 * End the session: free every side but survivor, then close once
 * survivor's output is flushed (survivor may be NULL: close now).
 */
void conn_close_after_flush(struct conn *, struct bufferevent *survivor);

/* The one teardown every path reaches. */
void conn_free(struct conn *);

/* Close every connection now (SIGINT, or the end of shutdown). */
void conn_free_all(struct worker *);

#endif
