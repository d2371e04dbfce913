/*
 * relay: the session.  Reads a side into the worker's scratch buffer and
 * writes it to the other (conn.c queues what the socket does not take and
 * holds the reader back while the queue is full), and ends both sides once
 * either ends, after the other has been sent everything already read.
 * Until authentication is over, authwatch sees the bytes first (SCRAM
 * channel binding across the gate).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "authwatch.h"
#include "cancelkey.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "pgproto.h"
#include "relay.h"
#include "tls.h"
#include "trust.h"

static void	relay_ready(struct side *);
static void	relay_failed(struct side *);
static void	relay_timeout(struct conn *, enum conn_timer);

static const struct conn_phase relay_phase = {
	relay_ready, relay_failed, relay_timeout,
};

/* Pass what one side sent to the other. */
static void
pass_on(struct side *from, const unsigned char *p, size_t n)
{
	struct conn	*c = from->conn;

	if (from == &c->client) {
		c->bytes_up += n;
		METRICS_ADD(c->worker, bytes_client_to_backend, n);
	} else {
		c->bytes_down += n;
		METRICS_ADD(c->worker, bytes_backend_to_client, n);
	}
	/* Both ways are typed messages: the StartupMessage went before. */
	pgstream_scan(&from->msgs, p, n);
	side_write(from->peer, p, n);
	/* For the drain's idle point: see at_idle_point(). */
	if (from == &c->client)
		c->asked = true;
	else if (pgstream_idle(&from->msgs))
		c->asked = false;
	/* A backend that talks after the client's end is not silent. */
	if (from == &c->backend && c->state == CONN_HALF_CLOSED)
		conn_restart_timer(c);
}

/*
 * Both legs are TLS, the certificates differ, and the client binds to the
 * one it sees: the backend would answer "SCRAM channel binding check
 * failed" and nobody would know why.  The proof covers the gs2 flag, so no
 * relay can mend it; say what to do instead.
 */
static void
refuse_binding(struct conn *c)
{
	char	gate_fp[TLS_FINGERPRINT_LEN], backend_fp[TLS_FINGERPRINT_LEN];
	char	detail[1024];

	tls_cert_fingerprint(SSL_get_certificate(c->client.ssl), gate_fp,
	    sizeof(gate_fp));
	tls_cert_fingerprint(SSL_get0_peer_certificate(c->backend.ssl),
	    backend_fp, sizeof(backend_fp));
	snprintf(detail, sizeof(detail), "The client binds to this gate's "
	    "certificate (SHA-256 %s); backend %s checks against its own "
	    "(SHA-256 %s). Connect with channel_binding=disable, or give the "
	    "gate the backend's certificate and key.", gate_fp,
	    c->route->backend_name, backend_fp);
	conn_refuse(c, METRICS_REFUSED_CHANNEL_BINDING, "08P01",
	    "SCRAM channel binding cannot pass through this gate", detail);
}

/*
 * During authentication, bytes go through authwatch, which may hold a
 * message back until it is whole, change it, or refuse the client.  Once
 * it is over the watcher is dropped and forward() is a plain pass again.
 */
static void
watch(struct side *from, const unsigned char *p, size_t n)
{
	struct conn		*c = from->conn;
	struct authwatch	*w = c->authwatch;
	enum authwatch_dir	 dir = from == &c->client ?
				    AUTHWATCH_FROM_CLIENT :
				    AUTHWATCH_FROM_BACKEND;
	const uint8_t		*out;
	size_t			 used, outlen;

	while (n > 0) {
		switch (authwatch_feed(w, dir, p, n, &used, &out, &outlen)) {
		case AUTHWATCH_REFUSE:
			refuse_binding(c);
			return;
		case AUTHWATCH_REWRITE:
			log_debug("host=%s port=%s: removed %s from the "
			    "backend's offer: the client's leg is plaintext",
			    c->host, c->port, AUTHWATCH_SCRAM_PLUS);
			break;
		case AUTHWATCH_PASS:
		case AUTHWATCH_HOLD:
			break;
		}
		if (outlen > 0)
			pass_on(from, out, outlen);
		p += used;
		n -= used;
	}
	if (!authwatch_active(w)) {
		/* A message either side began stays in order: it goes now. */
		out = authwatch_held(w, AUTHWATCH_FROM_CLIENT, &outlen);
		if (outlen > 0)
			pass_on(&c->client, out, outlen);
		out = authwatch_held(w, AUTHWATCH_FROM_BACKEND, &outlen);
		if (outlen > 0)
			pass_on(&c->backend, out, outlen);
		if (w->oversize)
			log_debug("host=%s port=%s: an authentication message "
			    "longer than %u bytes passed unexamined", c->host,
			    c->port, AUTHWATCH_HOLD_MAX);
		free(w);
		c->authwatch = NULL;
	}
}

/*
 * The per-direction message hook: what one side sent goes to the other,
 * through authwatch while authentication lasts.
 */
/*
 * ssl_sni: remember which backend issued this session's cancel key
 * (BackendKeyData, before ReadyForQuery), for cancel requests that come
 * without a server name.
 */
static void
watch_key(struct conn *c, const unsigned char *p, size_t n)
{
	enum cancelkey_result	r = cancelkey_feed(c->keyscan, p, n);

	if (r == CANCELKEY_MORE)
		return;
	if (r == CANCELKEY_FOUND && (c->cancel_slot = cancelkey_add(
	    &c->keyscan->key, c->route, sizeof(*c->route))) < 0)
		log_warn("session of host=%s port=%s: its cancel key is not "
		    "remembered (%d sessions are); a cancel request for it "
		    "goes to the default backend", c->host, c->port,
		    CANCELKEY_MAX);
	free(c->keyscan);
	c->keyscan = NULL;
}

static void
forward(struct side *from, const unsigned char *p, size_t n)
{
	if (from == &from->conn->backend && from->conn->keyscan != NULL)
		watch_key(from->conn, p, n);
	if (from->conn->authwatch != NULL)
		watch(from, p, n);
	else
		pass_on(from, p, n);
}

/* Still relaying: a refusal from forward() ends the session. */
static bool
relaying(const struct conn *c)
{
	return c->state == CONN_RELAY || c->state == CONN_HALF_CLOSED;
}

/*
 * The client closed its sending side.  It may still be reading: a query
 * sent just before is answered, as it would be by PostgreSQL directly.  So
 * the end is passed on to the backend (once what is queued for it has
 * left) and its answer relayed until it closes, which PostgreSQL does on
 * EOF, after the query in hand.  half_close_timeout (0: none) bounds only
 * a backend that holds the connection and says nothing: every byte from
 * it starts the count again, and while the gate holds it back (the client
 * reads the answer slowly) nothing is counted (conn.c's silence timer).
 */
static void
half_closed(struct conn *c)
{
	c->end_reason = "client closed the connection";
	conn_set_state(c, CONN_HALF_CLOSED, &relay_phase);
	side_shutdown(&c->backend);
}

/* One side ended: the other gets what was read, then both close. */
static void
ended(struct side *s, bool eof, const char *reason)
{
	struct conn	*c = s->conn;
	bool		 from_client = s == &c->client;

	if (from_client && eof && c->state == CONN_RELAY) {
		half_closed(c);
		return;
	}
	if (eof) {
		if (c->state != CONN_HALF_CLOSED)
			c->end_reason = from_client ?
			    "client closed the connection" :
			    "backend closed the connection";
	} else {
		log_info("session host=%s port=%s user=%s: %s connection "
		    "error: %s", c->host, c->port, c->user, s->name, reason);
		c->end_reason = from_client ? "client connection error" :
		    "backend connection error";
	}
	ERR_clear_error();
	conn_close_after_flush(c, s->peer);
}

/* PostgreSQL's own words for a shutdown: FATAL 57P01. */
static void
send_admin_shutdown(struct conn *c)
{
	uint8_t	buf[PGPROTO_ERROR_MAX];
	size_t	n;

	n = pgproto_build_error(buf, sizeof(buf), RELAY_DRAIN_SQLSTATE,
	    RELAY_DRAIN_MESSAGE, NULL);
	if (n <= sizeof(buf))
		side_write(&c->client, buf, n);
}

static void
send_terminate(struct conn *c)
{
	static const uint8_t	terminate[] = { 'X', 0, 0, 0, 4 };

	if (c->backend.fd >= 0 && !c->backend.broken &&
	    relay_at_boundary(&c->client) && side_queued(&c->backend) == 0)
		side_write(&c->backend, terminate, sizeof(terminate));
}

/*
 * The end of a drained session, with the client-bound stream at a message
 * boundary: libpq and the drivers know 57P01 as "the server ended this
 * session; reconnect".  The backend is told Terminate when what went to it
 * is whole, so it logs an orderly end rather than an unexpected EOF; an
 * open transaction is rolled back.
 */
static void
drain_end(struct conn *c, const char *why)
{
	send_admin_shutdown(c);
	send_terminate(c);
	log_debug("session host=%s port=%s user=%s: ended for the shutdown "
	    "(%s)", c->host, c->port, c->user, why);
	c->end_reason = why;
	METRICS_INC(c->worker, sessions_drained);
	conn_close_after_flush(c, &c->client);
}

void
relay_abort(struct conn *c)
{
	if (!relaying(c))
		return;
	/* One try each, between messages only: nothing waits for them. */
	if (relay_at_boundary(&c->backend) && side_queued(&c->client) == 0)
		send_admin_shutdown(c);
	send_terminate(c);
}

/*
 * An idle point: the backend's last word was ReadyForQuery 'I', it has
 * gone to the client, and the client has asked nothing since: no query
 * or Sync still to be answered (a pipelined one: pgstream_answered), and
 * no bytes at all after that ReadyForQuery (Parse, Bind, Execute with a
 * Flush, no Sync yet).  Ending there loses nothing, and the client knows
 * its next statement did not run.
 */
static bool
at_idle_point(const struct conn *c)
{
	return relay_backend_idle(c) && !c->asked &&
	    relay_at_boundary(&c->client) &&
	    pgstream_answered(&c->client.msgs, &c->backend.msgs);
}

/* After whatever was relayed: is this the moment a drain ends it? */
static void
drain_check(struct conn *c)
{
	if (!c->worker->draining || !relaying(c))
		return;
	if (at_idle_point(c))
		drain_end(c, "server shutting down: session idle");
	else if (c->worker->drain_force && relay_at_boundary(&c->backend))
		drain_end(c, "server shutting down: shutdown_timeout expired");
}

void
relay_drain(struct conn *c)
{
	switch (c->state) {
	case CONN_RELAY:
	case CONN_HALF_CLOSED:
		drain_check(c);
		break;
	case CONN_CLOSING:
	case CONN_CLOSED:
		break;		/* flushing, or gone */
	default:
		/*
		 * The startup phase: on drain, it may finish (a session
		 * then ends at its first ReadyForQuery); once
		 * shutdown_timeout is over, it is closed.
		 */
		if (c->worker->drain_force) {
			c->end_reason = "server shutting down";
			conn_close(c);
		}
		break;
	}
}

/*
 * A side is readable.  Plaintext: up to RELAY_READ in one go, so a bulk
 * transfer (COPY, a large result) leaves as full 16 KiB TLS records.  TLS:
 * OpenSSL reads ahead, so one recv() takes in the records that have
 * arrived, and reading stops once OpenSSL holds no unread bytes: the
 * socket is then empty, and epoll says when it is not.  Stopping at
 * RELAY_READ with records still held, conn.c wakes the side by hand.
 */
static void
relay_ready(struct side *s)
{
	unsigned char	*buf = s->conn->worker->scratch;
	size_t		 have = 0, want;
	ssize_t		 n = SIDE_AGAIN;

	while (have < RELAY_READ) {
		/* OpenSSL hands out one record per call anyway. */
		want = RELAY_READ - have;
		if (s->ssl != NULL && want > CONN_TLS_RECORD)
			want = CONN_TLS_RECORD;
		if ((n = side_read(s, buf + have, want)) <= 0)
			break;
		have += (size_t)n;
		/* Less than asked and nothing held: the socket is empty. */
		if ((size_t)n < want && (s->ssl == NULL ||
		    !SSL_has_pending(s->ssl)))
			break;
	}
	/*
	 * shutdown_timeout is over: the client gets the rest of the message
	 * in progress, then 57P01; the backend's later bytes are dropped
	 * with its connection.
	 */
	if (have > 0 && s == &s->conn->backend && s->conn->worker->drain_force &&
	    relaying(s->conn))
		have = pgstream_until_boundary(&s->msgs, buf, have);
	/* Whatever arrived before an end still goes through. */
	if (have > 0)
		forward(s, buf, have);
	if (!relaying(s->conn))
		return;
	drain_check(s->conn);
	if (!relaying(s->conn))
		return;
	if (n == 0 || n == SIDE_ERROR)
		ended(s, n == 0, s->error);
}

static void
relay_failed(struct side *s)
{
	ended(s, false, s->error);
}

static void
relay_timeout(struct conn *c, enum conn_timer t)
{
	char	why[128];

	(void)t;
	snprintf(why, sizeof(why), "no end from the backend after the client "
	    "closed: silent for half_close_timeout (%d ms)",
	    c->snap->cfg->half_close_timeout);
	ended(&c->backend, false, why);
}

static void
log_session_start(struct conn *c)
{
	SSL		*ssl = c->client.ssl, *bssl = c->backend.ssl;
	const char	*how = "plaintext";
	char		 tls[512], subject[256];

	if (ssl != NULL) {
		trust_peer_subject(ssl, subject, sizeof(subject));
		snprintf(tls, sizeof(tls), "%s %s%s%s%s%s",
		    SSL_get_version(ssl), SSL_get_cipher_name(ssl),
		    c->direct_tls ? " (direct)" : "", subject[0] ?
		    ", client certificate \"" : "", subject,
		    subject[0] ? "\"" : "");
		how = tls;
	}
	char		 sni[HOSTS_NAME_MAX + 360] = "";

	if (c->snap->hosts != NULL)
		snprintf(sni, sizeof(sni), " sni=%s backend=%s", c->sni,
		    c->route->backend_name);
	log_info("session started: host=%s port=%s user=%s database=%s%s %s, "
	    "backend %s%s%s", c->host, c->port, c->user, c->database, sni, how,
	    bssl != NULL ? SSL_get_version(bssl) : "plaintext",
	    bssl != NULL ? " " : "",
	    bssl != NULL ? SSL_get_cipher_name(bssl) : "");
}

/* Bytes read during the startup phase, not yet relayed. */
static void
forward_held(struct side *s)
{
	if (s->in.len > 0 && relaying(s->conn))
		forward(s, s->in.data + s->in.off, s->in.len);
	side_consume_in(s, s->in.len);
}

/*
 * What SCRAM channel binding needs of this session.  PostgreSQL offers
 * SCRAM-SHA-256-PLUS only over TLS, and checks the binding against its own
 * certificate; the client binds to the one it sees.
 */
static enum authwatch_mode
binding_mode(const struct conn *c)
{
	if (c->backend.ssl == NULL)
		return AUTHWATCH_OFF;
	if (c->client.ssl == NULL)
		return AUTHWATCH_STRIP_PLUS;
	if (tls_same_cert(SSL_get_certificate(c->client.ssl),
	    SSL_get0_peer_certificate(c->backend.ssl)))
		return AUTHWATCH_OFF;	/* the binding holds end to end */
	return AUTHWATCH_REFUSE_PLUS;
}

void
relay_start(struct conn *c)
{
	enum authwatch_mode	mode;

	c->established = true;
	if (c->client.ssl != NULL)
		METRICS_INC(c->worker, sessions_tls);
	else
		METRICS_INC(c->worker, sessions_plain);
	if (c->snap->hosts != NULL) {
		metrics_sni_session(c->sni);
		if ((c->keyscan = malloc(sizeof(*c->keyscan))) != NULL)
			cancelkey_scan_init(c->keyscan);
	}
	if (c->snap->cfg->log_connections)
		log_session_start(c);
	free(c->startup);	/* forwarded; not needed again */
	c->startup = NULL;
	if (c->client.ssl != NULL) {
		c->client.record = RELAY_CLIENT_RECORD;
		/* Whatever else OpenSSL writes is cut the same way. */
		SSL_set_max_send_fragment(c->client.ssl, RELAY_CLIENT_RECORD);
	}
	conn_set_state(c, CONN_RELAY, &relay_phase);
	if ((mode = binding_mode(c)) != AUTHWATCH_OFF) {
		if ((c->authwatch = malloc(sizeof(*c->authwatch))) == NULL) {
			conn_refuse(c, METRICS_REFUSED_BACKEND, "53200",
			    "out of memory", NULL);
			return;
		}
		authwatch_init(c->authwatch, mode);
	}
	/* Bytes the client sent after its StartupMessage follow it ... */
	forward_held(&c->client);
	/* ... and what the backend said while we looked at it goes back. */
	forward_held(&c->backend);
	drain_check(c);
}

bool
relay_at_boundary(const struct side *from)
{
	return pgstream_at_boundary(&from->msgs);
}

bool
relay_backend_idle(const struct conn *c)
{
	return c->state == CONN_RELAY && pgstream_idle(&c->backend.msgs);
}
