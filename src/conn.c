/*
 * conn: the life of a connection (accept, state, refusal, close, free) and
 * the I/O of its two sides.  Only this file touches a side's socket, TLS
 * session and events; client.c, backend.c and relay.c say what to do.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "cancelkey.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "startup.h"

/* A finished connection has this long to flush its last bytes. */
#define CONN_FLUSH_TIMEOUT_SEC	10

/* What a side waits for in a state. */
enum side_wait {
	SIDE_NONE,
	SIDE_READ,		/* its bytes (or a handshake's next step) */
	SIDE_CONNECTED,		/* writability: the connect is done */
};

/*
 * Each state: what it waits for on each side, and on which timer.
 * Whatever a side has queued is written in every state; that needs no
 * entry.  Startup states also run under authentication_timeout.
 */
static const struct {
	const char	*name;
	enum side_wait	 client;
	enum side_wait	 backend;
	enum conn_timer	 timer;
	bool		 startup;
} conn_table[CONN_NSTATES] = {
	[CONN_NEW] =		{ "accepted", SIDE_NONE, SIDE_NONE,
				  CONN_TIMER_NONE, true },
	[CONN_FIRST_BYTE] =	{ "waiting for the first byte", SIDE_READ,
				  SIDE_NONE, CONN_TIMER_NONE, true },
	[CONN_WAIT_STARTUP] =	{ "waiting for the startup packet", SIDE_READ,
				  SIDE_NONE, CONN_TIMER_NONE, true },
	[CONN_TLS_HANDSHAKE] =	{ "in the TLS handshake", SIDE_READ, SIDE_NONE,
				  CONN_TIMER_NONE, true },
	[CONN_BACKEND_CONNECT] = { "connecting to the backend", SIDE_NONE,
				  SIDE_CONNECTED, CONN_TIMER_CONNECT, true },
	[CONN_BACKEND_SSL] =	{ "negotiating SSL with the backend", SIDE_NONE,
				  SIDE_READ, CONN_TIMER_CONNECT, true },
	[CONN_BACKEND_TLS] =	{ "in the TLS handshake with the backend",
				  SIDE_NONE, SIDE_READ, CONN_TIMER_CONNECT,
				  true },
	[CONN_BACKEND_PROBE] =	{ "waiting for the backend's answer",
				  SIDE_NONE, SIDE_READ, CONN_TIMER_NONE, true },
	[CONN_CANCEL] =		{ "forwarding a cancel request", SIDE_NONE,
				  SIDE_READ, CONN_TIMER_NONE, true },
	[CONN_RELAY] =		{ "in session", SIDE_READ, SIDE_READ,
				  CONN_TIMER_NONE, false },
	[CONN_HALF_CLOSED] =	{ "in session, client closed", SIDE_NONE,
				  SIDE_READ, CONN_TIMER_SILENCE, false },
	[CONN_CLOSING] =	{ "closing", SIDE_NONE, SIDE_NONE,
				  CONN_TIMER_FLUSH, false },
	[CONN_CLOSED] =		{ "closed", SIDE_NONE, SIDE_NONE,
				  CONN_TIMER_NONE, false },
};

static void	side_arm(struct side *);
static void	side_event(evutil_socket_t, short, void *);

const char *
conn_state_name(enum conn_state state)
{
	return state < CONN_NSTATES ? conn_table[state].name : "unknown";
}

static enum side_wait
side_waits(const struct side *s)
{
	const struct conn	*c = s->conn;

	return s == &c->client ? conn_table[c->state].client :
	    conn_table[c->state].backend;
}

/* Buffers. */

static int
buf_add(struct side_buf *b, const void *p, size_t n, size_t max)
{
	size_t		 cap;
	unsigned char	*d;

	if (n > max || b->len > max - n)
		return -1;
	if (b->off > 0 && b->off + b->len + n > b->cap) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		for (cap = b->cap ? b->cap : 4096; cap < b->len + n; cap *= 2)
			;
		if (cap > max)
			cap = max;
		if ((d = realloc(b->data, cap)) == NULL)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->off + b->len, p, n);
	b->len += n;
	return 0;
}

static void
buf_drain(struct side_buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len > 0)
		return;
	b->off = 0;
	/* An idle connection keeps no bulk buffer (bench: memory per idle). */
	if (b->cap > 16384) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
}

static void
buf_free(struct side_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Plaintext I/O. */

static void
set_error(struct side *s, int err)
{
	s->errnum = err;
	snprintf(s->error, sizeof(s->error), "%s", strerror(err));
}

/* What recv() or send() returned, as the side's ops report it. */
static ssize_t
plain_result(struct side *s, ssize_t n)
{
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return SIDE_AGAIN;
	set_error(s, errno);
	return SIDE_ERROR;
}

static ssize_t
plain_recv(struct side *s, void *p, size_t len)
{
	return plain_result(s, recv(s->fd, p, len, MSG_DONTWAIT));
}

static ssize_t
plain_send(struct side *s, const void *p, size_t len)
{
	return plain_result(s, send(s->fd, p, len, MSG_DONTWAIT |
	    MSG_NOSIGNAL));
}

static void
plain_shutdown(struct side *s)
{
	shutdown(s->fd, SHUT_WR);
}

static bool
plain_pending(const struct side *s)
{
	(void)s;
	return false;
}

static const struct side_ops plain_ops = {
	plain_recv, plain_send, plain_shutdown, plain_pending,
};

/* TLS I/O: OpenSSL reads and writes the socket itself. */

static void
tls_error(struct side *s, int err)
{
	unsigned long	e = ERR_get_error();

	if (e != 0) {
		s->errnum = EPROTO;
		ERR_error_string_n(e, s->error, sizeof(s->error));
	} else if (err != 0)
		set_error(s, err);
	else {
		s->errnum = EPROTO;
		snprintf(s->error, sizeof(s->error), "TLS error");
	}
	ERR_clear_error();
}

static ssize_t
tls_recv(struct side *s, void *p, size_t len)
{
	int	n;

	errno = 0;
	if ((n = SSL_read(s->ssl, p, (int)(len > INT32_MAX ? INT32_MAX :
	    len))) > 0)
		return n;
	switch (SSL_get_error(s->ssl, n)) {
	case SSL_ERROR_ZERO_RETURN:	/* close_notify, or a plain EOF */
		return 0;
	case SSL_ERROR_WANT_READ:
		return SIDE_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		/* OpenSSL must send before it reads on (a KeyUpdate, say). */
		s->read_wants_write = true;
		return SIDE_AGAIN;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && errno == 0)
			return 0;	/* an EOF after all */
		/* FALLTHROUGH */
	default:
		tls_error(s, errno);
		return SIDE_ERROR;
	}
}

/*
 * A write OpenSSL could not finish must be repeated with the same length
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the bytes move to the queue).
 */
static ssize_t
tls_send(struct side *s, const void *p, size_t len)
{
	int	want, n;

	want = s->ssl_retry > 0 ? s->ssl_retry :
	    (int)(len < s->record ? len : s->record);
	errno = 0;
	if ((n = SSL_write(s->ssl, p, want)) > 0) {
		s->ssl_retry = 0;
		return n;
	}
	switch (SSL_get_error(s->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		s->write_wants_read = true;
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_WRITE:
		s->ssl_retry = want;
		return SIDE_AGAIN;
	default:
		tls_error(s, errno);
		return SIDE_ERROR;
	}
}

static void
tls_shutdown(struct side *s)
{
	SSL_shutdown(s->ssl);		/* close_notify */
	ERR_clear_error();
}

static bool
tls_pending(const struct side *s)
{
	return SSL_has_pending(s->ssl) == 1;
}

static const struct side_ops tls_ops = {
	tls_recv, tls_send, tls_shutdown, tls_pending,
};

/* Sides. */

static void
side_init(struct conn *c, struct side *s, struct side *peer, const char *name)
{
	s->conn = c;
	s->peer = peer;
	s->name = name;
	s->ops = &plain_ops;
	s->fd = -1;
	s->record = CONN_TLS_RECORD;
}

static int
side_attach(struct side *s, int fd)
{
	struct event_base	*base = s->conn->worker->base;

	s->fd = fd;
	s->rd = event_new(base, fd, EV_READ | EV_PERSIST, side_event, s);
	s->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, side_event, s);
	if (s->rd == NULL || s->wr == NULL) {
		snprintf(s->error, sizeof(s->error), "out of memory");
		return -1;
	}
	return 0;
}

/*
 * Arm what the side waits for now: the state's wait, unless the peer is
 * full or OpenSSL must write first, and writability while bytes are
 * queued.  Records OpenSSL already holds would never wake epoll, so a side
 * read with some held is woken by hand.
 */
static void
side_arm(struct side *s)
{
	enum side_wait	w;
	bool		rd = false, wr = false, reading;

	if (s->fd < 0 || s->rd == NULL)
		return;
	w = side_waits(s);
	reading = w == SIDE_READ && !s->paused && !s->eof;
	if (w == SIDE_CONNECTED)
		wr = true;
	if (reading) {
		if (s->read_wants_write)
			wr = true;
		else
			rd = true;
	}
	if (s->out.len > 0) {
		if (s->write_wants_read)
			rd = true;
		else
			wr = true;
	}
	if (rd != s->armed_rd) {
		if (rd)
			event_add(s->rd, NULL);
		else
			event_del(s->rd);
		s->armed_rd = rd;
	}
	if (wr != s->armed_wr) {
		if (wr)
			event_add(s->wr, NULL);
		else
			event_del(s->wr);
		s->armed_wr = wr;
	}
	if (reading && !s->read_wants_write && s->ops->pending(s))
		event_active(s->rd, EV_READ, 0);
}

static void	arm_timer(struct conn *);

/*
 * A side is held back while its peer's queue is full.  The backend's
 * silence after the client's end is not counted meanwhile: the backend
 * then waits for the gate, not the other way round.
 */
static void
side_set_paused(struct side *s, bool paused)
{
	struct conn	*c = s->conn;

	if (s->paused == paused)
		return;
	s->paused = paused;
	side_arm(s);
	if (s == &c->backend && conn_table[c->state].timer ==
	    CONN_TIMER_SILENCE)
		arm_timer(c);
}

static void
side_break(struct side *s)
{
	s->broken = true;
	/* Reported from the loop, so that no writer sees its conn end. */
	if (s->wr != NULL)
		event_active(s->wr, EV_WRITE, 0);
}

static void
side_flush(struct side *s)
{
	struct conn	*c = s->conn;
	ssize_t		 n;

	while (s->out.len > 0) {
		n = s->ops->send(s, s->out.data + s->out.off, s->out.len);
		if (n == SIDE_AGAIN)
			break;
		if (n == SIDE_ERROR) {
			s->broken = true;
			return;
		}
		buf_drain(&s->out, (size_t)n);
	}
	if (s->peer->paused && s->out.len <= CONN_HIGH_WATER / 2)
		side_set_paused(s->peer, false);
	if (s->out.len > 0)
		return;
	if (s->shut_pending && !s->shut) {
		s->shut_pending = false;
		s->shut = true;
		s->ops->shutdown(s);
	}
	if (c->state == CONN_CLOSING)
		conn_close(c);
}

/* A side's events: write its queue here, tell the phase the rest. */
static void
side_event(evutil_socket_t fd, short what, void *arg)
{
	struct side	*s = arg;
	struct conn	*c = s->conn;
	enum side_wait	 w = side_waits(s);
	bool		 ready = false;

	(void)fd;
	if (!s->broken && (what & EV_WRITE)) {
		if (w == SIDE_CONNECTED)
			ready = true;
		if (w == SIDE_READ && s->read_wants_write && !s->paused) {
			s->read_wants_write = false;
			ready = true;
		}
		if (s->out.len > 0 && !s->write_wants_read)
			side_flush(s);
	}
	if (!s->broken && (what & EV_READ)) {
		if (s->write_wants_read) {
			s->write_wants_read = false;
			side_flush(s);
		}
		if (w == SIDE_READ && !s->read_wants_write && !s->paused)
			ready = true;
	}
	if (c->state == CONN_CLOSED || s->fd < 0)
		return;
	if (s->broken) {
		if (c->state == CONN_CLOSING || c->phase == NULL)
			conn_close(c);
		else
			c->phase->failed(s);
		return;
	}
	/* The state may have moved on while its queue was written. */
	if (ready && side_waits(s) == w && c->phase != NULL)
		c->phase->ready(s);
	if (c->state != CONN_CLOSED && s->fd >= 0)
		side_arm(s);
}

int
side_connect(struct side *s, const struct sockaddr *sa, socklen_t len)
{
	int	fd, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return errno;
	if (side_attach(s, fd) != 0) {
		side_close(s);
		return ENOMEM;
	}
	if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
		err = errno;
		side_close(s);
		return err;
	}
	return 0;
}

int
side_connect_result(struct side *s)
{
	int		err = 0;
	socklen_t	len = sizeof(err);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	return err;
}

void
side_start_tls(struct side *s, SSL *ssl, bool server)
{
	s->ssl = ssl;
	s->ops = &tls_ops;
	SSL_set_fd(ssl, s->fd);
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	/*
	 * Read-ahead: one recv() takes in every record that has arrived,
	 * where a record at a time costs a recv() for its header and one for
	 * its body.  What OpenSSL then holds is woken by side_arm().
	 */
	SSL_set_read_ahead(ssl, 1);
	SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

enum side_handshake
side_handshake(struct side *s)
{
	int	rc;

	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_do_handshake(s->ssl)) == 1)
		return SIDE_HS_DONE;
	switch (SSL_get_error(s->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		s->read_wants_write = false;
		side_arm(s);
		return SIDE_HS_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		s->read_wants_write = true;
		side_arm(s);
		return SIDE_HS_AGAIN;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && errno != 0)
			set_error(s, errno);
		return SIDE_HS_FAILED;
	default:
		/* The queue is the caller's to describe. */
		return SIDE_HS_FAILED;
	}
}

ssize_t
side_read(struct side *s, void *p, size_t len)
{
	ssize_t	n;

	if (s->fd < 0)
		return 0;
	if ((n = s->ops->recv(s, p, len)) == 0)
		s->eof = true;
	if (n == SIDE_AGAIN && s->read_wants_write)
		side_arm(s);
	return n;
}

ssize_t
side_read_in(struct side *s, size_t max)
{
	unsigned char	 tmp[4096];
	size_t		 got = 0, want;
	ssize_t		 n = SIDE_AGAIN;

	while (s->in.len < max) {
		want = max - s->in.len;
		if (want > sizeof(tmp))
			want = sizeof(tmp);
		/* An end after bytes is left for the next read to find. */
		if ((n = s->ops->recv(s, tmp, want)) <= 0)
			break;
		if (buf_add(&s->in, tmp, (size_t)n, max) != 0) {
			snprintf(s->error, sizeof(s->error), "out of memory");
			return SIDE_ERROR;
		}
		got += (size_t)n;
	}
	if (n == SIDE_AGAIN && s->read_wants_write)
		side_arm(s);
	return got > 0 ? (ssize_t)got : n;
}

void
side_consume_in(struct side *s, size_t n)
{
	buf_drain(&s->in, n < s->in.len ? n : s->in.len);
	if (s->in.len == 0)
		buf_free(&s->in);
}

ssize_t
side_peek(struct side *s, uint8_t *byte)
{
	ssize_t	n = recv(s->fd, byte, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return SIDE_AGAIN;
	set_error(s, errno);
	return SIDE_ERROR;
}

/*
 * Straight to the socket when nothing is queued: queued, it would cost a
 * loop turn for writability and two epoll_ctl per message.
 */
void
side_write(struct side *s, const void *p, size_t len)
{
	const unsigned char	*b = p;
	ssize_t			 n;

	if (s->fd < 0 || s->broken)
		return;
	while (len > 0 && s->out.len == 0) {
		if ((n = s->ops->send(s, b, len)) == SIDE_AGAIN)
			break;
		if (n == SIDE_ERROR) {
			side_break(s);
			return;
		}
		b += n;
		len -= (size_t)n;
	}
	if (len == 0)
		return;
	if (buf_add(&s->out, b, len, CONN_QUEUE_MAX) != 0) {
		snprintf(s->error, sizeof(s->error), "out of memory");
		side_break(s);
		return;
	}
	/* s is slow: hold its peer back until s drains. */
	if (s->out.len >= CONN_HIGH_WATER)
		side_set_paused(s->peer, true);
	side_arm(s);
}

size_t
side_queued(const struct side *s)
{
	return s->out.len;
}

void
side_shutdown(struct side *s)
{
	if (s->fd < 0 || s->shut)
		return;
	if (s->out.len > 0) {
		s->shut_pending = true;
		return;
	}
	s->shut = true;
	s->ops->shutdown(s);
}

void
side_close(struct side *s)
{
	if (s->rd != NULL)
		event_free(s->rd);
	if (s->wr != NULL)
		event_free(s->wr);
	s->rd = s->wr = NULL;
	s->armed_rd = s->armed_wr = false;
	if (s->ssl != NULL) {
		/* Best effort close_notify; the socket is non-blocking. */
		if (!s->shut && SSL_is_init_finished(s->ssl))
			SSL_shutdown(s->ssl);
		ERR_clear_error();
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->ops = &plain_ops;
	buf_free(&s->out);
	buf_free(&s->in);
	s->ssl_retry = 0;
	s->read_wants_write = s->write_wants_read = false;
	s->eof = s->shut_pending = s->shut = s->broken = false;
	s->errnum = 0;
	s->error[0] = '\0';
	s->paused = false;
	/* The peer no longer waits on a queue that is gone. */
	side_set_paused(s->peer, false);
}

/* The connection. */

static void
set_timeout(struct event *ev, int ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

/* (Re)start the state's timer as the table says, or stop it. */
static void
arm_timer(struct conn *c)
{
	const struct config	*cfg = c->snap->cfg;
	int			 ms = 0;

	switch (conn_table[c->state].timer) {
	case CONN_TIMER_NONE:
	case CONN_TIMER_AUTH:
		break;
	case CONN_TIMER_CONNECT:
		ms = cfg->backend_connect_timeout;
		break;
	case CONN_TIMER_SILENCE:
		/* 0: no bound; and none while the gate holds it back. */
		if (!c->backend.paused)
			ms = cfg->half_close_timeout;
		break;
	case CONN_TIMER_FLUSH:
		ms = CONN_FLUSH_TIMEOUT_SEC * 1000;
		break;
	}
	if (ms > 0)
		set_timeout(c->timer, ms);
	else
		evtimer_del(c->timer);
}

void
conn_restart_timer(struct conn *c)
{
	if (c->state != CONN_CLOSED)
		arm_timer(c);
}

static void
timer_expired(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	enum conn_timer	 t = conn_table[c->state].timer;

	(void)fd;
	(void)what;
	if (t == CONN_TIMER_FLUSH || c->phase == NULL)
		conn_close(c);
	else
		c->phase->timeout(c, t);
}

static void
auth_expired(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)what;
	if (c->phase != NULL)
		c->phase->timeout(c, CONN_TIMER_AUTH);
	else
		conn_auth_expired(c);
}

/*
 * The connection leaves the startup phase (for a session, or to close):
 * authentication_timeout no longer applies, and it no longer counts
 * against max_startup_connections.
 */
static void
left_startup(struct conn *c)
{
	if (c->auth_timer != NULL)
		evtimer_del(c->auth_timer);
	if (c->in_startup) {
		startcap_leave(&c->source);
		c->in_startup = false;
	}
}

void
conn_set_state(struct conn *c, enum conn_state state,
    const struct conn_phase *phase)
{
	if (c->state == CONN_CLOSED)
		return;		/* nothing revives a closed connection */
	if (conn_table[c->state].startup && !conn_table[state].startup)
		left_startup(c);
	c->state = state;
	c->phase = phase;
	arm_timer(c);
	side_arm(&c->client);
	side_arm(&c->backend);
}

void
conn_turn_away(int fd, const char *message)
{
	uint8_t	buf[PGPROTO_ERROR_MAX], drain[512];
	size_t	n;
	int	i = 0;

	n = pgproto_build_error(buf, sizeof(buf), "53300", message, NULL);
	if (n <= sizeof(buf))
		(void)!send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	/*
	 * A close with unread bytes (the SSLRequest, usually there by now)
	 * would reset the connection, and a reset may overtake the answer.
	 */
	while (i++ < 4 && recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
		;
	close(fd);
}

/* Its refusals' log lines: once a second at most over all workers. */
static _Atomic long	refusal_logged;

/*
 * max_startup_connections(_per_host): a connection that has not finished
 * its startup phase costs a TLS handshake and its state (about 47 KB) for
 * up to authentication_timeout; past a cap, it is answered at once.
 * Returns false when fd was turned away.
 */
static bool
admit_startup(struct worker *w, const struct config *cfg, int fd,
    const struct sockaddr *sa, int salen, struct startcap_key *key)
{
	char	host[64] = "?", port[8] = "?", src[64], msg[256];
	unsigned cap = (unsigned)config_startup_cap(cfg),
		 per_host = (unsigned)config_startup_cap_per_host(cfg);
	enum startcap_verdict v;

	startcap_key_of(key, sa);
	if ((v = startcap_enter(key, cap, per_host)) == STARTCAP_OK)
		return true;
	startcap_key_name(key, src, sizeof(src));
	if (v == STARTCAP_HOST_FULL)
		snprintf(msg, sizeof(msg), "sorry, too many connections from "
		    "%s in the startup phase (max_startup_connections_per_host "
		    "= %u)", src, per_host);
	else
		snprintf(msg, sizeof(msg), "sorry, too many connections in the "
		    "startup phase (max_startup_connections = %u)", cap);
	METRICS_INC(w, refused[v == STARTCAP_HOST_FULL ?
	    METRICS_REFUSED_STARTUP_HOST : METRICS_REFUSED_STARTUP]);
	if (log_once_a_second(&refusal_logged)) {
		if (sa->sa_family != AF_UNIX)
			getnameinfo(sa, (socklen_t)salen, host, sizeof(host),
			    port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
		log_info("refused connection from host=%s port=%s: %s (further "
		    "such refusals this second are not logged)", host, port,
		    msg);
	}
	conn_turn_away(fd, msg);
	return false;
}

struct conn *
conn_new(struct worker *w, int fd, const struct conn_peer *peer)
{
	const struct sockaddr	*sa = peer->sa;
	int			 salen = peer->salen;
	struct snapshot		*snap;
	struct conn		*c;
	struct startcap_key	 key;
	unsigned		 open, max;

	snap = gate_snapshot();
	max = (unsigned)snap->cfg->max_connections;
	open = atomic_fetch_add_explicit(&gate.nconns, 1, memory_order_relaxed);
	if (startup_admit(open, max) == STARTUP_ADMIT_DROP) {
		atomic_fetch_sub_explicit(&gate.nconns, 1, memory_order_relaxed);
		/* A flood must not become a log flood: once a second. */
		if (time(NULL) != w->last_overload_log) {
			w->last_overload_log = time(NULL);
			log_warn("closing new connections at once: %u open, "
			    "max_connections = %u", open, max);
		}
		METRICS_INC(w, refused[METRICS_REFUSED_TOO_MANY]);
		snapshot_unref(snap);
		close(fd);
		return NULL;
	}
	if (!admit_startup(w, snap->cfg, fd, sa, salen, &key)) {
		atomic_fetch_sub_explicit(&gate.nconns, 1, memory_order_relaxed);
		snapshot_unref(snap);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		atomic_fetch_sub_explicit(&gate.nconns, 1, memory_order_relaxed);
		startcap_leave(&key);
		log_error("out of memory accepting a connection");
		snapshot_unref(snap);
		close(fd);
		return NULL;
	}
	c->worker = w;
	c->snap = snap;
	c->route = &snap->route;
	c->sni = "none";
	c->cancel_slot = -1;
	c->state = CONN_NEW;
	c->source = key;
	c->in_startup = true;
	c->over_limit = startup_admit(open, max) == STARTUP_ADMIT_REFUSE;
	side_init(c, &c->client, &c->backend, "client");
	side_init(c, &c->backend, &c->client, "backend");
	METRICS_INC(w, accepted);
	gettimeofday(&c->started, NULL);
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	atomic_store_explicit(&w->nconns, atomic_load_explicit(&w->nconns,
	    memory_order_relaxed) + 1, memory_order_relaxed);

	gate_tune_socket(fd, sa->sa_family, snap->cfg);
	if (salen > 0 && (size_t)salen <= sizeof(c->peer))
		memcpy(&c->peer, sa, (size_t)salen);
	if (sa->sa_family == AF_UNIX)
		snprintf(c->host, sizeof(c->host), "[local]");
	else if (getnameinfo(sa, (socklen_t)salen, c->host, sizeof(c->host),
	    c->port, sizeof(c->port), NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(c->host, sizeof(c->host), "?");
	if (snap->cfg->log_connections)
		log_info("connection received: host=%s port=%s%s%s", c->host,
		    c->port, peer->note != NULL ? " " : "",
		    peer->note != NULL ? peer->note : "");

	c->timer = evtimer_new(w->base, timer_expired, c);
	c->auth_timer = evtimer_new(w->base, auth_expired, c);
	if (side_attach(&c->client, fd) != 0 || c->timer == NULL ||
	    c->auth_timer == NULL) {
		if (c->client.fd < 0)
			close(fd);
		log_error("out of memory setting up connection from host=%s",
		    c->host);
		conn_close(c);
		return NULL;
	}
	set_timeout(c->auth_timer, snap->cfg->authentication_timeout);
	return c;
}

void
conn_refuse(struct conn *c, enum metrics_refusal reason, const char *sqlstate,
    const char *message, const char *detail)
{
	uint8_t	buf[PGPROTO_ERROR_MAX];
	size_t	n;

	if (c->state == CONN_CLOSED)
		return;
	if (c->user[0] != '\0')
		log_info("refused connection from host=%s port=%s user=%s "
		    "database=%s: %s%s%s", c->host, c->port, c->user,
		    c->database, message, detail != NULL ? " DETAIL: " : "",
		    detail != NULL ? detail : "");
	else
		log_info("refused connection from host=%s port=%s: %s%s%s",
		    c->host, c->port, message, detail != NULL ? " DETAIL: " : "",
		    detail != NULL ? detail : "");
	n = pgproto_build_error(buf, sizeof(buf), sqlstate, message, detail);
	if (n <= sizeof(buf))
		side_write(&c->client, buf, n);
	METRICS_INC(c->worker, refused[reason]);
	c->end_reason = "refused";
	conn_close_after_flush(c, &c->client);
}

void
conn_auth_expired(struct conn *c)
{
	METRICS_INC(c->worker, refused[METRICS_REFUSED_TIMEOUT]);
	log_info("closing connection from host=%s port=%s: "
	    "authentication_timeout (%d ms) expired while %s", c->host,
	    c->port, c->snap->cfg->authentication_timeout,
	    conn_state_name(c->state));
	conn_close(c);
}

void
conn_close_after_flush(struct conn *c, struct side *survivor)
{
	if (c->state == CONN_CLOSED)
		return;
	if (survivor != &c->backend)
		side_close(&c->backend);
	if (survivor != &c->client)
		side_close(&c->client);
	if (survivor == NULL || survivor->fd < 0 || survivor->broken ||
	    survivor->out.len == 0) {
		conn_close(c);
		return;
	}
	conn_set_state(c, CONN_CLOSING, c->phase);
}

static void
log_session_end(const struct conn *c)
{
	struct timeval	now, d;

	gettimeofday(&now, NULL);
	timersub(&now, &c->started, &d);
	log_info("disconnection: session time: %ld.%03ld s host=%s port=%s "
	    "user=%s database=%s%s%s bytes_from_client=%llu "
	    "bytes_from_backend=%llu (%s)", (long)d.tv_sec,
	    (long)(d.tv_usec / 1000), c->host, c->port, c->user, c->database,
	    c->snap->hosts != NULL ? " sni=" : "",
	    c->snap->hosts != NULL ? c->sni : "",
	    (unsigned long long)c->bytes_up,
	    (unsigned long long)c->bytes_down,
	    c->end_reason != NULL ? c->end_reason : "closed");
}

static void
disarm(struct side *s)
{
	if (s->rd != NULL)
		event_del(s->rd);
	if (s->wr != NULL)
		event_del(s->wr);
	s->armed_rd = s->armed_wr = false;
}

void
conn_close(struct conn *c)
{
	struct worker	*w = c->worker;
	unsigned	 left;

	if (c->state == CONN_CLOSED)
		return;
	if (conn_table[c->state].startup)
		left_startup(c);
	c->state = CONN_CLOSED;
	c->phase = NULL;
	if (c->established && c->snap->cfg->log_connections)
		log_session_end(c);
	disarm(&c->client);
	disarm(&c->backend);
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (c->auth_timer != NULL)
		evtimer_del(c->auth_timer);
	TAILQ_REMOVE(&w->conns, c, entry);
	TAILQ_INSERT_TAIL(&w->dead, c, entry);
	if (w->reap != NULL)
		event_active(w->reap, EV_TIMEOUT, 0);
	left = atomic_load_explicit(&w->nconns, memory_order_relaxed) - 1;
	atomic_store_explicit(&w->nconns, left, memory_order_relaxed);
	atomic_fetch_sub_explicit(&gate.nconns, 1, memory_order_relaxed);
	/* The last session of a SIGTERM drain ends the worker's loop. */
	if (w->draining && left == 0)
		event_base_loopbreak(w->base);
}

/* The one teardown: after conn_close(), from the reaper. */
static void
conn_free(struct conn *c)
{
	side_close(&c->client);
	side_close(&c->backend);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->auth_timer != NULL)
		event_free(c->auth_timer);
	free(c->startup);
	free(c->authwatch);
	free(c->verify_report);
	free(c->allow_refusal);
	cancelkey_remove(c->cancel_slot);
	free(c->keyscan);
	free(c->cancel_route);
	snapshot_unref(c->snap);
	free(c);
}

/* PgBouncer's justfree list: closed in a callback, freed after it. */
static void
reap(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct conn	*c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&w->dead)) != NULL) {
		TAILQ_REMOVE(&w->dead, c, entry);
		conn_free(c);
	}
}

int
conn_worker_init(struct worker *w)
{
	TAILQ_INIT(&w->dead);
	w->reap = event_new(w->base, -1, 0, reap, w);
	return w->reap != NULL ? 0 : -1;
}

void
conn_free_all(struct worker *w)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&w->conns)) != NULL) {
		c->end_reason = "server shutting down";
		conn_close(c);
	}
	reap(-1, 0, w);
	if (w->reap != NULL)
		event_free(w->reap);
	w->reap = NULL;
}
