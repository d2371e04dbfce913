/*
 * backend: the connection from the proxy to the database server.  Connects
 * to each resolved address in turn, negotiates TLS as backend_sslmode says
 * (libpq's rules, the proxy being the client), then forwards the client's
 * StartupMessage or CancelRequest.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "backend.h"
#include "backend_tls.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "pgproto.h"
#include "relay.h"

/* What this connection attempt wants from the backend (backend_want_tls). */
enum {
	WANT_PLAIN,		/* disable; allow's first try; Unix socket */
	WANT_TLS_OPTIONAL,	/* prefer: TLS if the backend says 'S' */
	WANT_TLS_REQUIRED,	/* require, verify-*, allow's retry */
};

static void try_address(struct conn *);

/*
 * backend_connect_timeout bounds each step before the startup packet is
 * sent: the TCP connect (libevent counts it as the write timeout), the
 * answer to the SSLRequest and the TLS handshake.
 */
static void
set_connect_timeout(struct conn *c, bool on)
{
	int		ms = c->snap->cfg->backend_connect_timeout;
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	bufferevent_set_timeouts(c->backend, on ? &tv : NULL, on ? &tv : NULL);
}
static void backend_event(struct bufferevent *, short, void *);

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
		conn_free(c);
		return;
	}
	conn_refuse(c, METRICS_REFUSED_BACKEND, "08006", msg, NULL);
}

static void
free_backend(struct conn *c)
{
	if (c->backend != NULL)
		bufferevent_free(c->backend);
	c->backend = NULL;
	c->backend_ssl = NULL;
}

/* Start over on the first address, e.g. to retry allow over TLS. */
static void
reconnect(struct conn *c, int want)
{
	free_backend(c);
	c->backend_want_tls = (uint8_t)want;
	c->backend_try = 0;
	c->state = CONN_WAIT_BACKEND;
	try_address(c);
}

static void
connect_failed(struct conn *c, int err)
{
	free_backend(c);
	if (++c->backend_try < c->route->nbackend) {
		try_address(c);
		return;
	}
	backend_failed(c, strerror(err));
}

/* The backend closes a cancel connection once it has acted on it. */
static void
cancel_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev),
	    evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
cancel_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	/* libpq waits for this close before it reports the cancel sent. */
	conn_free(arg);
}

/*
 * backend_sslmode=allow sent the StartupMessage in plaintext.  libpq's
 * rule: an ErrorResponse before authentication means "try again over
 * TLS", whatever its SQLSTATE (old servers send none).
 */
static void
probe_read(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 len = evbuffer_get_length(in);
	const uint8_t	*msg = evbuffer_pullup(in, len < 1024 ? (ssize_t)len :
			    1024);
	char		 text[256];

	if (msg == NULL || len == 0)
		return;
	if (msg[0] == 'E' && c->snap->backend_tls != NULL) {
		if (pgproto_error_field(msg, len < 1024 ? len : 1024, 'M', text,
		    sizeof(text)) == 0 && c->allow_refusal == NULL)
			c->allow_refusal = strdup(text);
		log_info("backend %s refused the plaintext session of host=%s "
		    "port=%s; retrying over TLS (backend_sslmode = allow)",
		    c->route->backend_name, c->host, c->port);
		reconnect(c, WANT_TLS_REQUIRED);
		return;
	}
	relay_start(c);
}

/* Forward the client's packet; the session or the cancel goes on. */
static void
send_startup(struct conn *c)
{
	struct bufferevent	*bev = c->backend;
	size_t			 len;
	const unsigned char	*pkt = evbuffer_pullup(c->startup, -1);

	set_connect_timeout(c, false);
	len = evbuffer_get_length(c->startup);
	/* A copy: allow may need the packet again for its TLS retry. */
	if (pkt == NULL || bufferevent_write(bev, pkt, len) != 0) {
		backend_failed(c, "out of memory");
		return;
	}
	if (c->cancel) {
		METRICS_INC(c->worker, cancels);
		c->state = CONN_CANCEL;
		log_info("forwarding cancel request from host=%s port=%s to "
		    "backend %s%s", c->host, c->port, c->route->backend_name,
		    c->backend_ssl != NULL ? " over TLS" : "");
		bufferevent_setcb(bev, cancel_read, NULL, cancel_event, c);
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if (c->snap->cfg->backend_sslmode == CONFIG_SSLMODE_ALLOW &&
	    c->backend_ssl == NULL) {
		c->state = CONN_BACKEND_PROBE;
		bufferevent_setcb(bev, probe_read, NULL, backend_event, c);
		bufferevent_enable(bev, EV_READ);
		return;
	}
	relay_start(c);
}

static void
start_tls(struct conn *c)
{
	evutil_socket_t		 fd = bufferevent_getfd(c->backend);
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = backend_tls_new(c->snap->backend_tls, c->snap->cfg)) ==
	    NULL) {
		backend_failed(c, "out of memory");
		return;
	}
	/* Keep the socket: the TLS bufferevent takes it over. */
	bufferevent_disable(c->backend, EV_READ | EV_WRITE);
	bufferevent_setfd(c->backend, -1);
	bufferevent_free(c->backend);
	bev = bufferevent_openssl_socket_new(c->worker->base, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		c->backend = NULL;
		backend_failed(c, "out of memory");
		return;
	}
	c->backend = bev;
	c->backend_ssl = ssl;
	c->state = CONN_BACKEND_TLS;
	set_connect_timeout(c, true);
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, NULL, NULL, backend_event, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* The backend's one-byte answer to our SSLRequest. */
static void
ssl_answer_read(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	uint8_t		 answer;

	if (evbuffer_remove(in, &answer, 1) != 1)
		return;
	switch (answer) {
	case PGPROTO_SSL_ACCEPT:
		/*
		 * Bytes after 'S' arrived before the handshake: not from a
		 * TLS peer, maybe injected (CVE-2021-23222 in libpq).
		 */
		if (evbuffer_get_length(in) > 0) {
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
	struct bufferevent	*bev = c->backend;

	gate_tune_socket(bufferevent_getfd(bev),
	    c->route->backend[c->backend_try].ss.ss_family, c->snap->cfg);
	if (c->backend_want_tls == WANT_PLAIN) {
		send_startup(c);
		return;
	}
	c->state = CONN_BACKEND_SSL;
	set_connect_timeout(c, true);
	bufferevent_write(bev, sslrequest, sizeof(sslrequest));
	bufferevent_setcb(bev, ssl_answer_read, NULL, backend_event, c);
	bufferevent_enable(bev, EV_READ);
}

static void
tls_failed(struct conn *c, bool timeout)
{
	unsigned long	errs[8], e;
	size_t		nerrs = 0;
	char		why[768];

	while ((e = bufferevent_get_openssl_error(c->backend)) != 0)
		if (nerrs < sizeof(errs) / sizeof(errs[0]))
			errs[nerrs++] = e;
	if (timeout)
		snprintf(why, sizeof(why), "the TLS handshake did not finish "
		    "within backend_connect_timeout");
	else
		backend_tls_describe(c->backend_ssl, errs, nerrs, why,
		    sizeof(why));
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
backend_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	switch (c->state) {
	case CONN_WAIT_BACKEND:
		if (what & BEV_EVENT_CONNECTED)
			connected(c);
		else
			connect_failed(c, (what & BEV_EVENT_TIMEOUT) ?
			    ETIMEDOUT : EVUTIL_SOCKET_ERROR());
		return;
	case CONN_BACKEND_TLS:
		if (what & BEV_EVENT_CONNECTED) {
			log_debug("TLS to backend %s: %s %s",
			    c->route->backend_name,
			    SSL_get_version(c->backend_ssl),
			    SSL_get_cipher_name(c->backend_ssl));
			send_startup(c);
		} else
			tls_failed(c, (what & BEV_EVENT_TIMEOUT) != 0);
		return;
	case CONN_BACKEND_SSL:
		backend_failed(c, (what & BEV_EVENT_TIMEOUT) ? "no answer to "
		    "the SSL request within backend_connect_timeout" :
		    "the backend closed the connection after the SSL request");
		return;
	case CONN_BACKEND_PROBE:
		/* Closed without a word: pass on whatever did arrive. */
		if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
			relay_start(c);
		else
			backend_failed(c, "the backend closed the connection "
			    "during startup");
		return;
	default:
		return;
	}
}

static void
try_address(struct conn *c)
{
	const struct backend_addr	*a = &c->route->backend[c->backend_try];

	c->backend = bufferevent_socket_new(c->worker->base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	if (c->backend == NULL) {
		backend_failed(c, "out of memory");
		return;
	}
	bufferevent_setcb(c->backend, NULL, NULL, backend_event, c);
	set_connect_timeout(c, true);
	if (bufferevent_socket_connect(c->backend,
	    (const struct sockaddr *)&a->ss, (int)a->len) != 0)
		connect_failed(c, errno);
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
