/*
 * relay: moves whole evbuffer chains from one side's input to the other's
 * output (no copy), and closes both sides once either ends, after the other
 * has been sent everything that was already read.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "relay.h"
#include "trust.h"

/* TLS records hold at most 16 KiB of data; fewer, fuller records are cheaper. */
#define RELAY_RECORD	16384
#define RELAY_READ	(4 * RELAY_RECORD)

/*
 * Send what src produced straight to dst's socket when nothing is queued
 * there.  Queued in dst's output, it would make libevent arm the write
 * event, wait a loop turn for writability, write and disarm it: two
 * epoll_ctl and an extra epoll_wait per message.  Whatever the socket does
 * not take now is queued after all, and libevent carries on from there
 * (for TLS, SSL_write's retry is then libevent's, with the same bytes).
 */
static void
write_now(struct conn *c, struct bufferevent *dst, struct evbuffer *in)
{
	struct evbuffer		*out = bufferevent_get_output(dst);
	SSL			*ssl = dst == c->client ? c->ssl : c->backend_ssl;
	struct evbuffer_iovec	 v;
	size_t			 len;
	int			 n;

	if (evbuffer_get_length(out) > 0)
		goto queue;
	if (ssl == NULL) {
		(void)evbuffer_write(in, bufferevent_getfd(dst));
		goto queue;
	}
	while ((len = evbuffer_get_length(in)) > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		/* A small first chunk with more behind it: fill a record. */
		if (v.iov_len < RELAY_RECORD && len > v.iov_len) {
			v.iov_len = len < RELAY_RECORD ? len : RELAY_RECORD;
			if ((v.iov_base = evbuffer_pullup(in,
			    (ssize_t)v.iov_len)) == NULL)
				break;
		}
		if (v.iov_len > RELAY_RECORD)
			v.iov_len = RELAY_RECORD;
		if ((n = SSL_write(ssl, v.iov_base, (int)v.iov_len)) <= 0) {
			ERR_clear_error();
			break;
		}
		evbuffer_drain(in, (size_t)n);
	}
queue:
	if (evbuffer_get_length(in) > 0)
		evbuffer_add_buffer(out, in);
}

/*
 * libevent reads a plain socket 4 KiB at a time (EVBUFFER_MAX_READ), so a
 * bulk transfer (COPY, a large result) would leave as 4 KiB TLS records,
 * each with its own header, tag and syscalls.  When a read came back full,
 * take what else the socket holds, up to RELAY_READ, so that write_now()
 * can send 16 KiB records.  The input buffer cannot grow inside its read
 * callback (libevent freezes its end), hence the worker's scratch buffer.
 * EOF and errors are left for libevent to see on its next read.
 */
static struct evbuffer *
read_more(struct conn *c, struct bufferevent *src, struct evbuffer *in)
{
	struct evbuffer		*buf = c->worker->scratch;
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	if (evbuffer_get_length(in) < 4096 || buf == NULL)
		return in;		/* the socket was drained */
	evbuffer_add_buffer(buf, in);
	while (evbuffer_get_length(buf) < RELAY_READ) {
		if (evbuffer_reserve_space(buf, RELAY_RECORD, &v, 1) < 1)
			break;
		n = recv(bufferevent_getfd(src), v.iov_base, v.iov_len,
		    MSG_DONTWAIT);
		if (n <= 0)
			break;
		v.iov_len = (size_t)n;
		evbuffer_commit_space(buf, &v, 1);
		if ((size_t)n < RELAY_RECORD)
			break;
	}
	return buf;
}

static void
relay_read(struct bufferevent *src, void *arg)
{
	struct conn		*c = arg;
	bool			 up = src == c->client;
	struct bufferevent	*dst = up ? c->backend : c->client;
	struct evbuffer		*in = bufferevent_get_input(src);
	struct evbuffer		*out = bufferevent_get_output(dst);
	size_t			 n;

	if ((up ? c->ssl : c->backend_ssl) == NULL)
		in = read_more(c, src, in);
	n = evbuffer_get_length(in);

	if (up) {
		c->bytes_up += n;
		METRICS_ADD(c->worker, bytes_client_to_backend, n);
	} else {
		c->bytes_down += n;
		METRICS_ADD(c->worker, bytes_backend_to_client, n);
	}
	write_now(c, dst, in);
	if (evbuffer_get_length(out) >= RELAY_HIGH_WATER) {
		/* dst is slow: stop reading src until dst drains to half. */
		bufferevent_disable(src, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, RELAY_HIGH_WATER / 2,
		    0);
	}
}

/* dst's output fell to its low-water mark. */
static void
relay_write(struct bufferevent *dst, void *arg)
{
	struct conn		*c = arg;
	struct bufferevent	*src = dst == c->client ? c->backend :
				    c->client;

	if (!(bufferevent_get_enabled(src) & EV_READ)) {
		bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
		bufferevent_enable(src, EV_READ);
	}
}

static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn		*c = arg;
	bool			 from_client = bev == c->client;
	struct bufferevent	*other = from_client ? c->backend : c->client;
	unsigned long		 e;

	/* Whatever arrived before the close still goes through. */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		relay_read(bev, c);
	if (what & BEV_EVENT_EOF) {
		c->end_reason = from_client ? "client closed the connection" :
		    "backend closed the connection";
	} else {
		char	reason[256] = "";

		if (from_client && c->ssl != NULL &&
		    (e = bufferevent_get_openssl_error(bev)) != 0)
			ERR_error_string_n(e, reason, sizeof(reason));
		else
			strncpy(reason, strerror(errno), sizeof(reason) - 1);
		log_info("session host=%s port=%s user=%s: %s connection "
		    "error: %s", c->host, c->port, c->user,
		    from_client ? "client" : "backend", reason);
		c->end_reason = from_client ? "client connection error" :
		    "backend connection error";
	}
	ERR_clear_error();
	conn_close_after_flush(c, other);
}

void
relay_start(struct conn *c)
{
	const char	*how = "plaintext";
	char		 tls[512], subject[256];

	event_free(c->timer);		/* authentication_timeout is over */
	c->timer = NULL;
	c->state = CONN_RELAY;
	c->established = true;
	if (c->ssl != NULL)
		METRICS_INC(c->worker, sessions_tls);
	else
		METRICS_INC(c->worker, sessions_plain);
	if (c->ssl != NULL) {
		trust_peer_subject(c->ssl, subject, sizeof(subject));
		snprintf(tls, sizeof(tls), "%s %s%s%s%s%s",
		    SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
		    c->direct_tls ? " (direct)" : "", subject[0] ?
		    ", client certificate \"" : "", subject,
		    subject[0] ? "\"" : "");
		how = tls;
	}
	if (c->snap->cfg->log_connections)
		log_info("session started: host=%s port=%s user=%s database=%s "
		    "%s, backend %s%s%s", c->host, c->port, c->user, c->database,
		    how, c->backend_ssl != NULL ? SSL_get_version(c->backend_ssl) :
		    "plaintext", c->backend_ssl != NULL ? " " : "",
		    c->backend_ssl != NULL ?
		    SSL_get_cipher_name(c->backend_ssl) : "");

	bufferevent_setcb(c->client, relay_read, relay_write, relay_event, c);
	bufferevent_setcb(c->backend, relay_read, relay_write, relay_event, c);
	bufferevent_set_max_single_read(c->client, RELAY_READ);
	bufferevent_set_max_single_read(c->backend, RELAY_READ);
	evbuffer_free(c->startup);	/* forwarded; not needed again */
	c->startup = NULL;
	/* Bytes the client sent after its StartupMessage follow it ... */
	if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
		relay_read(c->client, c);
	/* ... and what the backend said while we looked at it goes back. */
	if (evbuffer_get_length(bufferevent_get_input(c->backend)) > 0)
		relay_read(c->backend, c);
	bufferevent_enable(c->client, EV_READ);
	bufferevent_enable(c->backend, EV_READ);
}
