/*
 * backend: the backend's startup phase, the proxy being its client.
 * Connects to each resolved address in turn, negotiates TLS as
 * backend_sslmode says (libpq's rules), then forwards the client's
 * StartupMessage or CancelRequest and hands the session to relay.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "backend.h"
#include "backend_tls.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "pgproto.h"
#include "relay.h"

/* What this connection attempt wants from the backend (backend_want_tls). */
enum {
	WANT_PLAIN,		/* disable; allow's first try; Unix socket */
	WANT_TLS_OPTIONAL,	/* prefer: TLS if the backend says 'S' */
	WANT_TLS_REQUIRED,	/* require, verify-*, allow's retry */
};

/* The most of the backend's first answer looked at before the session. */
#define BACKEND_PROBE_MAX	1024

static void	backend_ready(struct side *);
static void	backend_failed_io(struct side *);
static void	backend_timeout(struct conn *, enum conn_timer);

static const struct conn_phase backend_phase = {
	backend_ready, backend_failed_io, backend_timeout,
};

static void	try_address(struct conn *);

/* The backend could not be used: tell the client (a cancel just ends). */
static void
backend_failed(struct conn *c, const char *why)
{
	char	msg[1024];

	/* allow's TLS retry failed: the plaintext refusal says more. */
	snprintf(msg, sizeof(msg), "could not connect to backend %s: %s%s%s%s",
	    c->route->backend_name, why, c->allow_refusal != NULL ?
	    " (the plaintext attempt was refused: \"" : "",
	    c->allow_refusal != NULL ? c->allow_refusal : "",
	    c->allow_refusal != NULL ? "\")" : "");
	if (c->cancel) {
		/* PostgreSQL never answers a CancelRequest; just close. */
		log_info("cancel request from host=%s port=%s dropped: %s",
		    c->host, c->port, msg);
		conn_close(c);
		return;
	}
	conn_refuse(c, METRICS_REFUSED_BACKEND, "08006", msg, NULL);
}

/* Start over on the first address, e.g. to retry allow over TLS. */
static void
reconnect(struct conn *c, int want)
{
	side_close(&c->backend);
	c->backend_want_tls = (uint8_t)want;
	c->backend_try = 0;
	try_address(c);
}

static void
connect_failed(struct conn *c, int err)
{
	side_close(&c->backend);
	if (++c->backend_try < c->route->nbackend) {
		try_address(c);
		return;
	}
	backend_failed(c, strerror(err));
}

/* Forward the client's packet; the session or the cancel goes on. */
static void
send_startup(struct conn *c)
{
	side_write(&c->backend, c->startup, c->startup_len);
	if (c->cancel) {
		METRICS_INC(c->worker, cancels);
		log_info("forwarding cancel request from host=%s port=%s to "
		    "backend %s%s", c->host, c->port, c->route->backend_name,
		    c->backend.ssl != NULL ? " over TLS" : "");
		conn_set_state(c, CONN_CANCEL, &backend_phase);
		return;
	}
	if (c->snap->cfg->backend_sslmode == CONFIG_SSLMODE_ALLOW &&
	    c->backend.ssl == NULL) {
		conn_set_state(c, CONN_BACKEND_PROBE, &backend_phase);
		return;
	}
	relay_start(c);
}

/*
 * backend_sslmode=allow sent the StartupMessage in plaintext.  libpq's
 * rule: an ErrorResponse before authentication means "try again over
 * TLS", whatever its SQLSTATE (old servers send none).
 */
static void
probe(struct conn *c)
{
	struct side	*b = &c->backend;
	const uint8_t	*msg;
	char		 text[256];
	ssize_t		 n;

	if ((n = side_read_in(b, BACKEND_PROBE_MAX)) == SIDE_AGAIN)
		return;
	if (n <= 0) {
		backend_failed(c, "the backend closed the connection during "
		    "startup");
		return;
	}
	msg = b->in.data + b->in.off;
	if (msg[0] == 'E' && c->snap->backend_tls != NULL) {
		if (pgproto_error_field(msg, b->in.len, 'M', text,
		    sizeof(text)) == 0 && c->allow_refusal == NULL)
			c->allow_refusal = strdup(text);
		log_info("backend %s refused the plaintext session of host=%s "
		    "port=%s; retrying over TLS (backend_sslmode = allow)",
		    c->route->backend_name, c->host, c->port);
		reconnect(c, WANT_TLS_REQUIRED);
		return;
	}
	relay_start(c);		/* what was read goes to the client first */
}

static void
tls_failed(struct conn *c, bool timeout)
{
	char	why[768];

	if (timeout) {
		snprintf(why, sizeof(why), "the TLS handshake did not finish "
		    "within backend_connect_timeout");
		ERR_clear_error();
	} else
		backend_tls_describe(c->backend.ssl, why, sizeof(why));
	/* libpq's prefer falls back to plaintext when TLS fails. */
	if (c->backend_want_tls == WANT_TLS_OPTIONAL) {
		log_info("TLS to backend %s failed (%s); trying plaintext "
		    "(backend_sslmode = prefer)", c->route->backend_name, why);
		reconnect(c, WANT_PLAIN);
		return;
	}
	log_info("TLS to backend %s failed for host=%s port=%s: %s",
	    c->route->backend_name, c->host, c->port, why);
	backend_failed(c, why);
}

static void
handshake(struct conn *c)
{
	switch (side_handshake(&c->backend)) {
	case SIDE_HS_AGAIN:
		return;
	case SIDE_HS_FAILED:
		tls_failed(c, false);
		return;
	case SIDE_HS_DONE:
		log_debug("TLS to backend %s: %s %s", c->route->backend_name,
		    SSL_get_version(c->backend.ssl),
		    SSL_get_cipher_name(c->backend.ssl));
		send_startup(c);
		return;
	}
}

static void
start_tls(struct conn *c)
{
	SSL	*ssl;

	if ((ssl = backend_tls_new(c->snap->backend_tls, c->snap->cfg)) ==
	    NULL) {
		backend_failed(c, "out of memory");
		return;
	}
	side_start_tls(&c->backend, ssl, false);
	conn_set_state(c, CONN_BACKEND_TLS, &backend_phase);
	handshake(c);		/* our ClientHello goes first */
}

/* The backend's one-byte answer to our SSLRequest. */
static void
ssl_answer(struct conn *c)
{
	struct side	*b = &c->backend;
	ssize_t		 n;
	uint8_t		 answer;

	/* More than one byte is read, to see what else came with it. */
	if ((n = side_read_in(b, 256)) == SIDE_AGAIN)
		return;
	if (n <= 0) {
		backend_failed(c, "the backend closed the connection after "
		    "the SSL request");
		return;
	}
	answer = b->in.data[b->in.off];
	side_consume_in(b, 1);
	switch (answer) {
	case PGPROTO_SSL_ACCEPT:
		/*
		 * Bytes after 'S' arrived before the handshake: not from a
		 * TLS peer, maybe injected (CVE-2021-23222 in libpq).
		 */
		if (b->in.len > 0) {
			log_warn("backend %s sent unencrypted data after "
			    "accepting SSL; possible man-in-the-middle",
			    c->route->backend_name);
			backend_failed(c, "received unencrypted data after "
			    "SSL response");
			return;
		}
		start_tls(c);
		return;
	case PGPROTO_SSL_DECLINE:
		if (c->backend_want_tls == WANT_TLS_OPTIONAL) {
			send_startup(c);
			return;
		}
		backend_failed(c, c->allow_refusal != NULL ? "the backend does "
		    "not support SSL" : "the backend does not support SSL, but "
		    "backend_sslmode requires it");
		return;
	default:
		backend_failed(c, "the backend did not answer the SSL request "
		    "('S' or 'N' expected)");
		return;
	}
}

static void
connected(struct conn *c)
{
	static const uint8_t	 sslrequest[8] = {
		0, 0, 0, 8,
		(PGPROTO_SSL_REQUEST_CODE >> 24) & 0xff,
		(PGPROTO_SSL_REQUEST_CODE >> 16) & 0xff,
		(PGPROTO_SSL_REQUEST_CODE >> 8) & 0xff,
		PGPROTO_SSL_REQUEST_CODE & 0xff,
	};

	gate_tune_socket(c->backend.fd,
	    c->route->backend[c->backend_try].ss.ss_family, c->snap->cfg);
	if (c->backend_want_tls == WANT_PLAIN) {
		send_startup(c);
		return;
	}
	side_write(&c->backend, sslrequest, sizeof(sslrequest));
	conn_set_state(c, CONN_BACKEND_SSL, &backend_phase);
}

/* The backend closes a cancel connection once it has acted on it. */
static void
cancel_read(struct conn *c)
{
	ssize_t	n;

	while ((n = side_read(&c->backend, c->worker->scratch,
	    RELAY_READ)) > 0)
		;
	/* libpq waits for this close before it reports the cancel sent. */
	if (n != SIDE_AGAIN)
		conn_close(c);
}

static void
backend_ready(struct side *s)
{
	struct conn	*c = s->conn;
	int		 err;

	switch (c->state) {
	case CONN_BACKEND_CONNECT:
		if ((err = side_connect_result(s)) != 0)
			connect_failed(c, err);
		else
			connected(c);
		return;
	case CONN_BACKEND_SSL:
		ssl_answer(c);
		return;
	case CONN_BACKEND_TLS:
		handshake(c);
		return;
	case CONN_BACKEND_PROBE:
		probe(c);
		return;
	case CONN_CANCEL:
		cancel_read(c);
		return;
	default:
		return;
	}
}

/* Writing to the backend failed: as if it had closed, in each state. */
static void
backend_failed_io(struct side *s)
{
	struct conn	*c = s->conn;

	switch (c->state) {
	case CONN_BACKEND_SSL:
		backend_failed(c, "the backend closed the connection after "
		    "the SSL request");
		return;
	case CONN_BACKEND_TLS:
		tls_failed(c, false);
		return;
	case CONN_CANCEL:
		conn_close(c);
		return;
	default:
		backend_failed(c, "the backend closed the connection during "
		    "startup");
		return;
	}
}

static void
backend_timeout(struct conn *c, enum conn_timer t)
{
	char	msg[400];

	if (t == CONN_TIMER_AUTH) {
		if (c->cancel || c->state == CONN_CANCEL) {
			conn_auth_expired(c);
			return;
		}
		snprintf(msg, sizeof(msg), "could not connect to backend %s: "
		    "timed out after authentication_timeout",
		    c->route->backend_name);
		conn_refuse(c, METRICS_REFUSED_BACKEND, "08006", msg, NULL);
		return;
	}
	/* backend_connect_timeout bounds each step before the startup. */
	switch (c->state) {
	case CONN_BACKEND_CONNECT:
		connect_failed(c, ETIMEDOUT);
		return;
	case CONN_BACKEND_TLS:
		tls_failed(c, true);
		return;
	default:
		backend_failed(c, "no answer to the SSL request within "
		    "backend_connect_timeout");
		return;
	}
}

static void
try_address(struct conn *c)
{
	const struct backend_addr	*a = &c->route->backend[c->backend_try];
	int				 err;

	if ((err = side_connect(&c->backend, (const struct sockaddr *)&a->ss,
	    a->len)) != 0) {
		if (err == ENOMEM) {
			backend_failed(c, "out of memory");
			return;
		}
		connect_failed(c, err);
		return;
	}
	conn_set_state(c, CONN_BACKEND_CONNECT, &backend_phase);
}

void
backend_connect(struct conn *c, bool cancel)
{
	const struct config	*cfg = c->snap->cfg;

	c->backend_try = 0;
	c->cancel = cancel;
	if (c->snap->backend_tls == NULL ||
	    cfg->backend_sslmode == CONFIG_SSLMODE_ALLOW)
		c->backend_want_tls = WANT_PLAIN;
	else if (cfg->backend_sslmode == CONFIG_SSLMODE_PREFER)
		c->backend_want_tls = WANT_TLS_OPTIONAL;
	else
		c->backend_want_tls = WANT_TLS_REQUIRED;
	try_address(c);
}
