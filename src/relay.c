/*
 * relay: moves what one side sends to the other, and closes both sides once
 * either ends, after the other has been sent everything already read.
 * Until authentication is over, authwatch sees the bytes first (SCRAM
 * channel binding across the gate).
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "authwatch.h"
#include "cancelkey.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "relay.h"
#include "tls.h"
#include "trust.h"

/*
 * Send what a side sent straight to the other side's socket when nothing is
 * queued there.  Queued in dst's output, it would make libevent arm the
 * write event, wait a loop turn for writability, write and disarm it: two
 * epoll_ctl and an extra epoll_wait per message.  Whatever the socket does
 * not take now is queued after all, and libevent carries on from there
 * (for TLS, SSL_write's retry is then libevent's, with the same bytes
 * first; an error is libevent's to report too).
 */
static void
write_now(struct conn *c, struct bufferevent *dst, const unsigned char *p,
    size_t len)
{
	struct evbuffer	*out = bufferevent_get_output(dst);
	SSL		*ssl = dst == c->client ? c->ssl : c->backend_ssl;
	size_t		 record = dst == c->client ? RELAY_CLIENT_RECORD :
			    RELAY_RECORD;
	ssize_t		 n;

	while (len > 0 && evbuffer_get_length(out) == 0) {
		if (ssl != NULL)
			n = SSL_write(ssl, p, (int)(len < record ? len :
			    record));
		else
			n = send(bufferevent_getfd(dst), p, len,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0) {
			ERR_clear_error();
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (len > 0)
		evbuffer_add(out, p, len);
}

static void	side_read_client(evutil_socket_t, short, void *);
static void	side_read_backend(evutil_socket_t, short, void *);
static void	ended(struct conn *, bool, bool, const char *);
static void	linger_arm(struct conn *);

/* Each side is read by relay.c's own event; see side_read(). */
static struct event *
reader(struct conn *c, bool up)
{
	return up ? c->rd_client : c->rd_backend;
}

static SSL *
side_ssl(const struct conn *c, bool up)
{
	return up ? c->ssl : c->backend_ssl;
}

/*
 * Wait on a side for readability, or, when OpenSSL must write before it
 * can read on, for writability; then side_read() reads again.
 */
static void
arm_reader(struct conn *c, bool up, bool for_write)
{
	struct event	*ev = reader(c, up);

	c->read_wants_write[up] = for_write;
	event_del(ev);
	event_assign(ev, c->worker->base, event_get_fd(ev),
	    (for_write ? EV_WRITE : EV_READ) | EV_PERSIST,
	    up ? side_read_client : side_read_backend, c);
	event_add(ev, NULL);
}

/* Reads of a side are paused while the other side's output is too full. */
static void
pause_reading(struct conn *c, bool up)
{
	event_del(reader(c, up));
}

static void
resume_reading(struct conn *c, bool up)
{
	SSL	*ssl = side_ssl(c, up);

	event_add(reader(c, up), NULL);
	/* Records OpenSSL already holds would never wake epoll. */
	if (ssl != NULL && !c->read_wants_write[up] && SSL_has_pending(ssl))
		event_active(reader(c, up), EV_READ, 0);
}

/* Pass what one side sent to the other; pause it if the other is slow. */
static void
pass_on(struct conn *c, bool up, const unsigned char *p, size_t n)
{
	struct bufferevent	*dst = up ? c->backend : c->client;

	if (up) {
		c->bytes_up += n;
		METRICS_ADD(c->worker, bytes_client_to_backend, n);
	} else {
		c->bytes_down += n;
		METRICS_ADD(c->worker, bytes_backend_to_client, n);
	}
	write_now(c, dst, p, n);
	if (evbuffer_get_length(bufferevent_get_output(dst)) >=
	    RELAY_HIGH_WATER) {
		/* dst is slow: stop reading this side until dst drains. */
		pause_reading(c, up);
		c->paused[up] = true;
		bufferevent_setwatermark(dst, EV_WRITE, RELAY_HIGH_WATER / 2,
		    0);
	}
	/* A backend that talks after the client's end is not silent. */
	if (!up && c->backend_shut)
		linger_arm(c);
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

	tls_cert_fingerprint(SSL_get_certificate(c->ssl), gate_fp,
	    sizeof(gate_fp));
	tls_cert_fingerprint(SSL_get0_peer_certificate(c->backend_ssl),
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
 * Returns false when the connection was refused (c may be gone).
 */
static bool
watch(struct conn *c, bool up, const unsigned char *p, size_t n)
{
	struct authwatch	*w = c->authwatch;
	enum authwatch_dir	 dir = up ? AUTHWATCH_FROM_CLIENT :
				    AUTHWATCH_FROM_BACKEND;
	const uint8_t		*out;
	size_t			 used, outlen;

	while (n > 0) {
		switch (authwatch_feed(w, dir, p, n, &used, &out, &outlen)) {
		case AUTHWATCH_REFUSE:
			refuse_binding(c);
			return false;
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
			pass_on(c, up, out, outlen);
		p += used;
		n -= used;
	}
	if (!authwatch_active(w)) {
		/* A message either side began stays in order: it goes now. */
		out = authwatch_held(w, AUTHWATCH_FROM_CLIENT, &outlen);
		if (outlen > 0)
			pass_on(c, true, out, outlen);
		out = authwatch_held(w, AUTHWATCH_FROM_BACKEND, &outlen);
		if (outlen > 0)
			pass_on(c, false, out, outlen);
		if (w->oversize)
			log_debug("host=%s port=%s: an authentication message "
			    "longer than %u bytes passed unexamined", c->host,
			    c->port, AUTHWATCH_HOLD_MAX);
		free(w);
		c->authwatch = NULL;
	}
	return true;
}

/*
 * What one side sent goes to the other.  Returns false when the
 * connection ended here (c may be gone).
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

static bool
forward(struct conn *c, bool up, const unsigned char *p, size_t n)
{
	if (!up && c->keyscan != NULL)
		watch_key(c, p, n);
	if (c->authwatch != NULL)
		return watch(c, up, p, n);
	pass_on(c, up, p, n);
	return true;
}

static void
linger_expired(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	char		 why[128];

	(void)fd;
	(void)what;
	snprintf(why, sizeof(why), "no end from the backend after the client "
	    "closed: silent for half_close_timeout (%d ms)",
	    c->snap->cfg->half_close_timeout);
	ended(c, false, false, why);
}

/*
 * After the client's end, the timer counts the backend's silence only:
 * every byte from it starts the count again, and while the gate is not
 * reading it (the client reads the answer slowly) there is no count at
 * all, since the backend is then waiting for the gate, not the other way
 * round.  PostgreSQL finishes the query in hand and exits on the EOF, so
 * a long query's answer still comes; half_close_timeout (0: none) only
 * bounds a backend that holds the connection and says nothing.
 */
static void
linger_arm(struct conn *c)
{
	int		ms = c->snap->cfg->half_close_timeout;
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	if (c->timer == NULL || c->state != CONN_RELAY)
		return;
	if (c->paused[false])
		evtimer_del(c->timer);
	else
		evtimer_add(c->timer, &tv);
}

/* The client is gone for writing; tell the backend the same way. */
static void
half_close_backend(struct conn *c)
{
	c->backend_shut = true;
	if (c->backend_ssl != NULL) {
		SSL_shutdown(c->backend_ssl);	/* close_notify */
		ERR_clear_error();
	} else
		shutdown(bufferevent_getfd(c->backend), SHUT_WR);
	if (c->snap->cfg->half_close_timeout == 0)
		return;
	if ((c->timer = evtimer_new(c->worker->base, linger_expired, c)) ==
	    NULL) {
		ended(c, false, false, "out of memory");
		return;
	}
	linger_arm(c);
}

/*
 * The client closed its sending side.  It may still be reading: a query
 * sent just before is answered, as it would be by PostgreSQL directly.  So
 * the end is passed on to the backend (once what is queued for it has
 * left) and its answer relayed until it closes, which PostgreSQL does on
 * EOF; half_close_timeout bounds a backend that falls silent instead.
 */
static void
client_half_closed(struct conn *c)
{
	c->client_done = true;
	if (!c->paused[true])
		pause_reading(c, true);
	/* The way back stays open: the answer still goes out. */
	bufferevent_enable(c->client, EV_WRITE);
	c->end_reason = "client closed the connection";
	if (evbuffer_get_length(bufferevent_get_output(c->backend)) == 0)
		half_close_backend(c);
}

/* One side ended: the other gets what was read, then both close. */
static void
ended(struct conn *c, bool from_client, bool eof, const char *reason)
{
	if (from_client && eof && !c->client_done) {
		client_half_closed(c);
		return;
	}
	if (eof) {
		if (!c->client_done)
			c->end_reason = from_client ?
			    "client closed the connection" :
			    "backend closed the connection";
	} else {
		log_info("session host=%s port=%s user=%s: %s connection "
		    "error: %s", c->host, c->port, c->user,
		    from_client ? "client" : "backend", reason);
		c->end_reason = from_client ? "client connection error" :
		    "backend connection error";
	}
	ERR_clear_error();
	conn_close_after_flush(c, from_client ? c->backend : c->client);
}

/*
 * Bytes libevent read during the startup phase, not yet relayed.  Returns
 * false when the connection ended here (c may be gone).
 */
static bool
relay_drain(struct conn *c, struct bufferevent *src)
{
	struct evbuffer	*in = bufferevent_get_input(src);
	size_t		 len = evbuffer_get_length(in);
	unsigned char	*p;

	if (len == 0 || (p = evbuffer_pullup(in, -1)) == NULL)
		return true;
	if (!forward(c, src == c->client, p, len))
		return false;
	evbuffer_drain(in, len);
	return true;
}

static void
relay_read(struct bufferevent *src, void *arg)
{
	(void)relay_drain(arg, src);
}

/*
 * One read of up to len bytes from a side into p: the byte count, 0 at the
 * end of the stream, -1 when nothing more is there now (*err 0) or on an
 * error (*err set, with the reason in reason[]).
 */
static ssize_t
side_recv(struct conn *c, bool up, unsigned char *p, size_t len, int *err,
    char *reason, size_t reasonlen)
{
	struct bufferevent	*src = up ? c->client : c->backend;
	SSL			*ssl = side_ssl(c, up);
	ssize_t			 n;
	int			 n_ssl;

	if (ssl == NULL) {
		n = recv(bufferevent_getfd(src), p, len, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			*err = errno;
			snprintf(reason, reasonlen, "%s", strerror(errno));
		}
		return n;
	}
	errno = 0;
	if ((n_ssl = SSL_read(ssl, p, (int)len)) > 0)
		return n_ssl;
	switch (SSL_get_error(ssl, n_ssl)) {
	case SSL_ERROR_ZERO_RETURN:	/* close_notify, or a plain EOF */
		return 0;
	case SSL_ERROR_WANT_READ:
		return -1;
	case SSL_ERROR_WANT_WRITE:
		/* OpenSSL must send before it reads on (an alert, say). */
		arm_reader(c, up, true);
		return -1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (errno == 0)		/* an EOF after all */
				return 0;
			*err = errno;
			snprintf(reason, reasonlen, "%s", strerror(errno));
			return -1;
		}
		/* FALLTHROUGH */
	default:
		*err = EPROTO;
		ERR_error_string_n(ERR_get_error(), reason, reasonlen);
		ERR_clear_error();
		return -1;
	}
}

/*
 * A side is readable.  Both kinds of side are read here rather than by
 * libevent.  Plaintext: libevent reads 4 KiB at a time after an
 * ioctl(FIONREAD), so a bulk transfer (COPY, a large result) would leave
 * as 4 KiB TLS records.  TLS: libevent's TLS bufferevent reads a record as
 * two recv() calls (header, then body), often with a third to learn that
 * nothing more is there.  Here OpenSSL reads ahead, so one recv() takes in
 * the records that have arrived, and reading stops once OpenSSL holds no
 * unread bytes: the socket is then empty, and epoll says when it is not.
 *
 * Up to RELAY_READ at once, into the worker's scratch buffer, so that
 * write_now() can send full 16 KiB records; what the other side does not
 * take at once is copied into its output.
 */
static void
side_read(struct conn *c, bool up)
{
	unsigned char	*buf = c->worker->scratch;
	SSL		*ssl = side_ssl(c, up);
	size_t		 have = 0, want;
	ssize_t		 n = -1;
	int		 err = 0;
	char		 reason[256] = "";

	if (c->read_wants_write[up])	/* writable again */
		arm_reader(c, up, false);
	while (have < RELAY_READ) {
		/* OpenSSL hands out one record per call anyway. */
		want = RELAY_READ - have;
		if (ssl != NULL && want > RELAY_RECORD)
			want = RELAY_RECORD;
		if ((n = side_recv(c, up, buf + have, want, &err, reason,
		    sizeof(reason))) <= 0)
			break;
		have += (size_t)n;
		/* Less than asked and nothing held: the socket is empty. */
		if ((size_t)n < want && (ssl == NULL || !SSL_has_pending(ssl)))
			break;
	}
	/* Whatever arrived before an end still goes through. */
	if (have > 0 && !forward(c, up, buf, have))
		return;
	if (n == 0 || err != 0) {
		ended(c, up, n == 0, reason);
		return;
	}
	/* Stopped at RELAY_READ with records still in OpenSSL: go on. */
	if (ssl != NULL && !c->paused[up] && !c->read_wants_write[up] &&
	    SSL_has_pending(ssl))
		event_active(reader(c, up), EV_READ, 0);
}

static void
side_read_client(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	side_read(arg, true);
}

static void
side_read_backend(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	side_read(arg, false);
}

/* dst's output fell to its low-water mark: the other side may go on. */
static void
relay_write(struct bufferevent *dst, void *arg)
{
	struct conn	*c = arg;
	bool		 up = dst == c->backend;	/* the side that feeds dst */

	if (up && c->client_done) {
		if (!c->backend_shut &&
		    evbuffer_get_length(bufferevent_get_output(dst)) == 0)
			half_close_backend(c);
		return;
	}
	if (c->paused[up]) {
		c->paused[up] = false;
		bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
		resume_reading(c, up);
		if (!up && c->backend_shut)	/* the silence count resumes */
			linger_arm(c);
	}
}

static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	bool		 from_client = bev == c->client;
	char		 reason[256] = "";
	unsigned long	 e;

	if (!relay_drain(c, bev))
		return;
	if (!(what & BEV_EVENT_EOF)) {
		if ((e = bufferevent_get_openssl_error(bev)) != 0)
			ERR_error_string_n(e, reason, sizeof(reason));
		else
			snprintf(reason, sizeof(reason), "%s", strerror(errno));
	}
	ended(c, from_client, (what & BEV_EVENT_EOF) != 0, reason);
}

void
relay_stop(struct conn *c)
{
	if (c->rd_client != NULL)
		event_free(c->rd_client);
	if (c->rd_backend != NULL)
		event_free(c->rd_backend);
	c->rd_client = c->rd_backend = NULL;
	free(c->authwatch);
	c->authwatch = NULL;
}

static void
log_session_start(struct conn *c)
{
	const char	*how = "plaintext";
	char		 tls[512], subject[256];

	if (c->ssl != NULL) {
		trust_peer_subject(c->ssl, subject, sizeof(subject));
		snprintf(tls, sizeof(tls), "%s %s%s%s%s%s",
		    SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
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
	    c->backend_ssl != NULL ? SSL_get_version(c->backend_ssl) :
	    "plaintext", c->backend_ssl != NULL ? " " : "",
	    c->backend_ssl != NULL ? SSL_get_cipher_name(c->backend_ssl) : "");
}

/*
 * What SCRAM channel binding needs of this session.  PostgreSQL offers
 * SCRAM-SHA-256-PLUS only over TLS, and checks the binding against its own
 * certificate; the client binds to the one it sees.
 */
static enum authwatch_mode
binding_mode(struct conn *c)
{
	if (c->backend_ssl == NULL)
		return AUTHWATCH_OFF;
	if (c->ssl == NULL)
		return AUTHWATCH_STRIP_PLUS;
	if (tls_same_cert(SSL_get_certificate(c->ssl),
	    SSL_get0_peer_certificate(c->backend_ssl)))
		return AUTHWATCH_OFF;	/* the binding holds end to end */
	return AUTHWATCH_REFUSE_PLUS;
}

void
relay_start(struct conn *c)
{
	enum authwatch_mode	mode;

	event_free(c->timer);		/* authentication_timeout is over */
	c->timer = NULL;
	c->state = CONN_RELAY;
	c->established = true;
	conn_startup_done(c);
	if (c->ssl != NULL)
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

	bufferevent_setcb(c->client, relay_read, relay_write, relay_event, c);
	bufferevent_setcb(c->backend, relay_read, relay_write, relay_event, c);
	/* From here on, the bufferevents only write; side_read() reads. */
	bufferevent_disable(c->client, EV_READ);
	bufferevent_disable(c->backend, EV_READ);
	c->rd_client = event_new(c->worker->base, bufferevent_getfd(c->client),
	    EV_READ | EV_PERSIST, side_read_client, c);
	c->rd_backend = event_new(c->worker->base,
	    bufferevent_getfd(c->backend), EV_READ | EV_PERSIST,
	    side_read_backend, c);
	if (c->rd_client == NULL || c->rd_backend == NULL) {
		conn_refuse(c, METRICS_REFUSED_BACKEND, "53200",
		    "out of memory", NULL);
		return;
	}
	if (c->ssl != NULL) {
		SSL_set_read_ahead(c->ssl, 1);
		/* What libevent writes from the queue is cut the same way. */
		SSL_set_max_send_fragment(c->ssl, RELAY_CLIENT_RECORD);
	}
	if (c->backend_ssl != NULL)
		SSL_set_read_ahead(c->backend_ssl, 1);
	evbuffer_free(c->startup);	/* forwarded; not needed again */
	c->startup = NULL;
	if ((mode = binding_mode(c)) != AUTHWATCH_OFF) {
		if ((c->authwatch = malloc(sizeof(*c->authwatch))) == NULL) {
			conn_refuse(c, METRICS_REFUSED_BACKEND, "53200",
			    "out of memory", NULL);
			return;
		}
		authwatch_init(c->authwatch, mode);
	}
	/* Bytes the client sent after its StartupMessage follow it ... */
	if (!relay_drain(c, c->client))
		return;
	/* ... and what the backend said while we looked at it goes back. */
	if (!relay_drain(c, c->backend))
		return;
	if (!c->paused[true])
		resume_reading(c, true);
	if (!c->paused[false])
		resume_reading(c, false);
}
