/*
 * httpd: one request per connection, GET or HEAD, no body, Connection:
 * close.  At most METRICS_MAX_CLIENTS connections, each with a fixed head
 * buffer and one deadline from accept; the routes answer from counters and
 * flags, so a scrape never waits on a worker.
 */
#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "gate.h"
#include "health.h"
#include "httpd.h"
#include "httpreq.h"
#include "log.h"
#include "exposition.h"
#include "metrics.h"

/*
 * At METRICS_MAX_CLIENTS connections the listener is disabled until one
 * closes; main.c counts them (and the listening socket) in the descriptor
 * budget.  Those waiting meanwhile sit in the kernel's backlog.
 */
#define HTTPD_BACKLOG		(2 * METRICS_MAX_CLIENTS)
#define HTTPD_ACCEPT_PAUSE_MS	250

enum httpd_state {
	HTTPD_READ_HEAD,	/* waits for the end of the request head */
	HTTPD_WRITE,		/* waits to send the rest of the response */
	HTTPD_LINGER,		/* sent; waits for the client's close */
};

struct httpd_conn {
	enum httpd_state	 state;
	int			 fd;
	struct event		*rd, *wr, *timer;
	struct evbuffer		*out;
	size_t			 len;
	size_t			 discarded;	/* HTTPD_LINGER */
	char			 head[HTTPD_MAX_HEAD + 1];
};

static struct {
	struct event_base	*base;
	struct evconnlistener	*listener;
	struct event		*pause;		/* after EMFILE: wait a moment */
	bool			 paused;
	time_t			 last_error_log;
	int			 nclients;
	struct httpd_conn	*clients[METRICS_MAX_CLIENTS];
} httpd;

static void
ms_to_tv(int ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* Accepting is on while below the cap and not pausing after an error. */
static void
update_listener(void)
{
	if (httpd.listener == NULL)
		return;
	if (httpd.paused || httpd.nclients >= METRICS_MAX_CLIENTS)
		evconnlistener_disable(httpd.listener);
	else
		evconnlistener_enable(httpd.listener);
}

static void
conn_close(struct httpd_conn *c)
{
	for (int i = 0; i < httpd.nclients; i++) {
		if (httpd.clients[i] == c) {
			httpd.clients[i] = httpd.clients[--httpd.nclients];
			break;
		}
	}
	if (c->rd != NULL)
		event_free(c->rd);
	if (c->wr != NULL)
		event_free(c->wr);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	update_listener();
}

/* ---- the routes -------------------------------------------------------- */

/* GET /healthz: every worker's loop has stamped its heartbeat lately. */
static int
route_healthz(struct evbuffer *body)
{
	int64_t	*beats, age = 0;
	int	 stuck;

	if ((beats = calloc((size_t)gate.nworkers, sizeof(*beats))) == NULL) {
		evbuffer_add_printf(body, "out of memory\n");
		return 500;
	}
	for (int i = 0; i < gate.nworkers; i++)
		beats[i] = atomic_load_explicit(&gate.workers[i].last_beat,
		    memory_order_relaxed);
	stuck = health_stuck_worker(beats, gate.nworkers, health_clock_ms(),
	    HEALTH_STALE_MS, &age);
	free(beats);
	if (stuck < 0) {
		evbuffer_add_printf(body, "ok\n");
		return 200;
	}
	evbuffer_add_printf(body, "worker %d: its event loop has not run "
	    "for %lld.%01lld s\n", stuck, (long long)(age / 1000),
	    (long long)(age % 1000 / 100));
	return 503;
}

/* GET /readyz: listening, not draining, and a certificate in date. */
static int
route_readyz(struct evbuffer *body)
{
	struct snapshot			*snap = gate_snapshot();
	struct health_ready_facts	 f;
	char				 reason[256];
	bool				 ready;

	f.listening = atomic_load(&gate.listening);
	f.draining = atomic_load(&gate.draining);
	f.ssl = snap->cfg->ssl;
	f.cert_loaded = snap->tls != NULL;
	f.cert_not_after = snap->trust.cert_not_after;
	f.now = time(NULL);
	snapshot_unref(snap);
	ready = health_ready(&f, reason, sizeof(reason));
	evbuffer_add_printf(body, "%s\n", reason);
	return ready ? 200 : 503;
}

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* The whole response to r (status, when not 0, refuses it) into out. */
static int
respond(const struct httpreq *r, int status, struct evbuffer *out)
{
	struct evbuffer	*body = evbuffer_new();
	const char	*type = "text/plain; charset=utf-8";
	bool		 head_only = r != NULL && r->head_only;

	if (body == NULL)
		return -1;
	if (status == 0 && strcmp(r->path, "/metrics") == 0) {
		exposition_render(body);
		type = "text/plain; version=0.0.4; charset=utf-8";
		status = 200;
	} else if (status == 0 && strcmp(r->path, "/healthz") == 0)
		status = route_healthz(body);
	else if (status == 0 && strcmp(r->path, "/readyz") == 0)
		status = route_readyz(body);
	else if (status == 0)
		status = 404;
	switch (status) {
	case 400:
		evbuffer_add_printf(body, "bad request\n");
		break;
	case 404:
		evbuffer_add_printf(body, "not found; try /metrics, /healthz "
		    "or /readyz\n");
		break;
	case 405:
		evbuffer_add_printf(body, "only GET and HEAD\n");
		break;
	case 413:
		evbuffer_add_printf(body, "no request body accepted\n");
		break;
	case 431:
		evbuffer_add_printf(body, "request head over %d bytes\n",
		    HTTPD_MAX_HEAD);
		break;
	}
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sCache-Control: no-store\r\n"
	    "Connection: close\r\n\r\n", status, status_text(status), type,
	    evbuffer_get_length(body), status == 405 ? "Allow: GET, HEAD\r\n" :
	    "");
	if (!head_only)
		evbuffer_add_buffer(out, body);
	evbuffer_free(body);
	return 0;
}

/* ---- the connection ------------------------------------------------------ */

/* Sent: no more to say; read what the client still sends until it closes. */
static void
start_linger(struct httpd_conn *c)
{
	struct timeval	tv;

	c->state = HTTPD_LINGER;
	event_del(c->wr);
	shutdown(c->fd, SHUT_WR);
	ms_to_tv(HTTPD_LINGER_MS, &tv);
	evtimer_add(c->timer, &tv);
	if (event_add(c->rd, NULL) != 0)
		conn_close(c);
}

static void
write_some(struct httpd_conn *c)
{
	if (evbuffer_write(c->out, c->fd) < 0 && errno != EAGAIN &&
	    errno != EINTR) {
		conn_close(c);
		return;
	}
	if (evbuffer_get_length(c->out) == 0)
		start_linger(c);
	else if (event_add(c->wr, NULL) != 0)
		conn_close(c);
}

static void
send_response(struct httpd_conn *c, const struct httpreq *r,
    int status)
{
	event_del(c->rd);
	if (respond(r, status, c->out) != 0) {
		conn_close(c);
		return;
	}
	c->state = HTTPD_WRITE;
	write_some(c);
}

/* HTTPD_READ_HEAD: into the fixed buffer, never past HTTPD_MAX_HEAD. */
static void
read_head(struct httpd_conn *c)
{
	struct httpreq	r;
	ssize_t		n;
	size_t		end;

	n = recv(c->fd, c->head + c->len, HTTPD_MAX_HEAD - c->len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	if ((end = httpreq_head_end(c->head, c->len)) == 0) {
		if (c->len == HTTPD_MAX_HEAD)
			send_response(c, NULL, 431);
		return;
	}
	c->head[end] = '\0';
	httpreq_parse(c->head, end, &r);
	send_response(c, &r, r.status);
}

/*
 * HTTPD_LINGER: closing with unread bytes would reset the connection and
 * could destroy the answer before the client read it; so read them, up to
 * a bound, until the client closes.
 */
static void
discard(struct httpd_conn *c)
{
	char	sink[4096];
	ssize_t	n;

	n = recv(c->fd, sink, sizeof(sink), 0);
	if (n > 0 && (c->discarded += (size_t)n) <= HTTPD_LINGER_BYTES)
		return;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	conn_close(c);
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_conn	*c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case HTTPD_READ_HEAD:
		read_head(c);
		break;
	case HTTPD_WRITE:	/* not reading then */
		break;
	case HTTPD_LINGER:
		discard(c);
		break;
	}
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	write_some(arg);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_close(arg);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct httpd_conn	*c;
	struct timeval		 tv;

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	if (httpd.nclients >= METRICS_MAX_CLIENTS ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	httpd.clients[httpd.nclients++] = c;
	c->rd = event_new(httpd.base, fd, EV_READ | EV_PERSIST, on_read, c);
	c->wr = event_new(httpd.base, fd, EV_WRITE | EV_PERSIST, on_write, c);
	c->timer = evtimer_new(httpd.base, on_timeout, c);
	c->out = evbuffer_new();
	ms_to_tv(HTTPD_DEADLINE_MS, &tv);
	if (c->rd == NULL || c->wr == NULL || c->timer == NULL ||
	    c->out == NULL || event_add(c->rd, NULL) != 0 ||
	    evtimer_add(c->timer, &tv) != 0) {
		conn_close(c);
		return;
	}
	update_listener();
}

static void
resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	httpd.paused = false;
	update_listener();
}

/*
 * EMFILE and the like: the connection stays in the backlog, so the socket
 * is readable again at once.  As the workers do, pause rather than spin,
 * and say so at most once a second.
 */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval	tv;
	int		err = errno;
	time_t		now = time(NULL);

	(void)l;
	(void)arg;
	ms_to_tv(HTTPD_ACCEPT_PAUSE_MS, &tv);
	if (httpd.pause == NULL || evtimer_add(httpd.pause, &tv) != 0)
		return;
	httpd.paused = true;
	update_listener();
	if (now != httpd.last_error_log) {
		httpd.last_error_log = now;
		log_warn("metrics_listen: could not accept a connection: %s; "
		    "not accepting for %d ms%s", strerror(err),
		    HTTPD_ACCEPT_PAUSE_MS, err == EMFILE || err == ENFILE ?
		    " (raise the open file limit, or lower max_connections)" :
		    "");
	}
}

int
httpd_listen(struct event_base *base, const char *hostport, char *err,
    size_t errlen)
{
	struct addrinfo	 hints, *res, *ai;
	char		 host[256], service[16];
	int		 port, rc, saved = 0;

	if (config_split_hostport(hostport, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "metrics_listen \"%s\": expected "
		    "host:port", hostport);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(service, sizeof(service), "%d", port);
	if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
		snprintf(err, errlen, "metrics_listen: could not resolve "
		    "\"%s\": %s", host, gai_strerror(rc));
		return -1;
	}
	httpd.base = base;
	for (ai = res; ai != NULL && httpd.listener == NULL; ai = ai->ai_next) {
		httpd.listener = evconnlistener_new_bind(base, on_accept, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
		    LEV_OPT_REUSEABLE, HTTPD_BACKLOG, ai->ai_addr,
		    (int)ai->ai_addrlen);
		if (httpd.listener == NULL)
			saved = errno;
	}
	freeaddrinfo(res);
	if (httpd.listener == NULL) {
		snprintf(err, errlen, "metrics_listen: could not bind to %s "
		    "port %d: %s", host, port, strerror(saved));
		return -1;
	}
	evconnlistener_set_error_cb(httpd.listener, on_accept_error);
	if ((httpd.pause = evtimer_new(base, resume_accepting, NULL)) == NULL) {
		snprintf(err, errlen, "metrics_listen: out of memory");
		httpd_close();
		return -1;
	}
	log_info("serving metrics on http://%s:%d/metrics, health on "
	    "/healthz and /readyz", host, port);
	return 0;
}

void
httpd_close(void)
{
	while (httpd.nclients > 0)
		conn_close(httpd.clients[0]);
	if (httpd.listener != NULL)
		evconnlistener_free(httpd.listener);
	if (httpd.pause != NULL)
		event_free(httpd.pause);
	httpd.listener = NULL;
	httpd.pause = NULL;
	httpd.paused = false;
}
