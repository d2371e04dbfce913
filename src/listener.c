/*
 * listener: binds listen_addresses:port ("*" meaning every IPv4 and IPv6
 * address, as in postgresql.conf) and hands accepted sockets to client.c,
 * through preamble.c's PROXY header stage when proxy_protocol is on.
 * Each worker has its own sockets on the same addresses (SO_REUSEPORT):
 * the kernel spreads new connections over the workers.  Under socket
 * activation the sockets come from systemd instead, one set for all.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "client.h"
#include "conn.h"
#include "gate.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "preamble.h"

#define LISTEN_BACKLOG	1024

/* Socket activation: systemd's sockets, fds first .. first + n - 1. */
static int	inherited_first = -1;
static int	inherited_n;

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	preamble_accept(arg, fd, sa, salen);
}

#define ACCEPT_PAUSE_MS	250
/* Connections answered from the reserve per wake-up, so others run too. */
#define ACCEPT_RESERVE_BATCH	64

int
listener_reserve_open(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < w->nlisteners; i++)
		evconnlistener_enable(w->listeners[i]);
}

/*
 * Out of descriptors: give up the reserve for one accept(), answer that
 * client with 53300 as PostgreSQL does when it cannot fork, close, take
 * the reserve back; and again for what else waits.  Silence would leave
 * the client hanging until its own timeout.  Returns false when that did
 * not work (no reserve, or another thread took the freed descriptor).
 */
static bool
answer_from_reserve(struct worker *w, struct evconnlistener *l, int *err)
{
	static _Atomic long	last_log;
	int			fd, n = 0;

	if (w->reserve_fd < 0)		/* lost last time: try again */
		w->reserve_fd = listener_reserve_open();
	while (w->reserve_fd >= 0 && n < ACCEPT_RESERVE_BATCH) {
		close(w->reserve_fd);
		fd = accept4(evconnlistener_get_fd(l), NULL, NULL,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		*err = errno;
		if (fd >= 0) {
			conn_turn_away(fd, "sorry, too many clients already");
			METRICS_INC(w, refused[METRICS_REFUSED_NO_FDS]);
			n++;
		}
		w->reserve_fd = listener_reserve_open();
		if (fd < 0)
			break;
	}
	if (n > 0 && log_once_a_second(&last_log))
		log_warn("out of file descriptors: answered %d client%s with "
		    "53300 and closed (raise the open file limit, or lower "
		    "max_connections)", n, n == 1 ? "" : "s");
	/* Queue empty: done.  Anything else: pause and try again. */
	return w->reserve_fd >= 0 && (n == ACCEPT_RESERVE_BATCH ||
	    *err == EAGAIN || *err == EWOULDBLOCK);
}

/*
 * EMFILE and friends.  The pending connection stays in the backlog, so the
 * socket is readable again at once: without a pause, the loop would spin
 * and the log fill up.  Stop accepting for a moment, say so once, go on;
 * never exit.  Out of descriptors, the reserve answers first; the pause is
 * for when even that fails.
 */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct worker	*w = arg;
	struct timeval	 tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int		 err = errno;

	if ((err == EMFILE || err == ENFILE) && answer_from_reserve(w, l, &err))
		return;
	if (w->accept_pause == NULL && (w->accept_pause = evtimer_new(w->base,
	    resume_accepting, w)) == NULL)
		return;
	if (evtimer_pending(w->accept_pause, NULL))
		return;
	for (int i = 0; i < w->nlisteners; i++)
		evconnlistener_disable(w->listeners[i]);
	evtimer_add(w->accept_pause, &tv);
	log_warn("could not accept a connection: %s; not accepting for %d ms"
	    "%s", strerror(err), ACCEPT_PAUSE_MS, err == EMFILE ||
	    err == ENFILE ? " (raise the open file limit, or lower "
	    "max_connections)" : "");
}

/*
 * A socket bound to ai.  With SO_REUSEPORT, a second server on the same
 * port would bind too and silently share the connections; so the first
 * worker's socket is bound without it first, which fails with EADDRINUSE
 * if anything holds the port, and only then the shared sockets are made.
 */
static int
bind_socket(const struct addrinfo *ai, bool reuseport)
{
	int	fd, one = 1;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	/* "*" binds :: and 0.0.0.0 separately, so keep IPv6 to IPv6. */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		int	saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int
bind_one(struct worker *w, const struct addrinfo *ai, const char *name,
    int port, char *err, size_t errlen)
{
	struct evconnlistener	*l;
	char			 host[NI_MAXHOST] = "?";
	int			 fd = -1;

	getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
	    NI_NUMERICHOST);
	if (w->nlisteners == WORKER_MAX_LISTENERS) {
		snprintf(err, errlen, "listen_addresses: more than %d "
		    "addresses", WORKER_MAX_LISTENERS);
		return -1;
	}
	/* Worker 0 first makes sure nobody holds the port (see above). */
	if (w->id == 0 && (fd = bind_socket(ai, false)) >= 0)
		close(fd);
	if (w->id != 0 || fd >= 0)
		fd = bind_socket(ai, true);
	if (fd < 0) {
		snprintf(err, errlen, "could not bind to %s port %d (from "
		    "listen_addresses \"%s\"): %s%s", host, port, name,
		    strerror(errno), errno == EADDRINUSE ? "; is another "
		    "server already running on that port?" : "");
		return -1;
	}
	l = evconnlistener_new(w->base, accept_cb, w,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, LISTEN_BACKLOG, fd);
	if (l == NULL) {
		snprintf(err, errlen, "could not listen on %s port %d: %s",
		    host, port, strerror(errno));
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	w->listeners[w->nlisteners++] = l;
	if (w->id == 0)
		log_info("listening on %s port %d", host, port);
	return 0;
}

static int
open_name(struct worker *w, const char *name, int port, char *err,
    size_t errlen)
{
	struct addrinfo	 hints, *res, *ai;
	char		 service[16];
	int		 rc, bound = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(strcmp(name, "*") == 0 ? NULL : name, service,
	    &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen_addresses: could not resolve "
		    "\"%s\": %s", name, gai_strerror(rc));
		return -1;
	}
	/*
	 * As PostgreSQL does, an address that cannot be bound (say ::1 on a
	 * host without IPv6) is a warning as long as another one works.
	 */
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (bind_one(w, ai, name, port, err, errlen) == 0)
			bound++;
		else if ((ai->ai_next != NULL || bound > 0) && w->id == 0)
			log_warn("%s", err);
	}
	freeaddrinfo(res);
	return bound > 0 ? 0 : -1;
}

void
listener_use_inherited(int first, int n)
{
	inherited_first = first;
	inherited_n = n;
}

void
listener_close_inherited(void)
{
	for (int i = 0; i < inherited_n; i++)
		close(inherited_first + i);
	inherited_n = 0;
}

/*
 * SO_REUSEPORT cannot split one inherited socket, so every worker accepts
 * on it, each through a dup() of its own: a worker that drains closes its
 * copy, and the socket closes with the last one.  The accept queue is
 * shared; a worker woken for a connection another took gets EAGAIN, which
 * libevent ignores.  Each dup lives in a different event base, so the
 * epoll changelist's trouble with dup()ed fds (worker.c) does not arise.
 */
static int
open_inherited(struct worker *w, char *err, size_t errlen)
{
	for (int i = 0; i < inherited_n; i++) {
		struct evconnlistener	*l;
		struct sockaddr_storage	 ss;
		socklen_t		 sslen = sizeof(ss);
		char			 host[NI_MAXHOST] = "?", port[16] = "?";
		bool			 named;
		int			 fd;

		if ((fd = fcntl(inherited_first + i, F_DUPFD_CLOEXEC, 0)) < 0) {
			snprintf(err, errlen, "could not duplicate inherited "
			    "socket %d: %s", inherited_first + i,
			    strerror(errno));
			goto fail;
		}
		/* Backlog 0: systemd has already called listen(). */
		l = evconnlistener_new(w->base, accept_cb, w,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (l == NULL) {
			snprintf(err, errlen, "could not accept on inherited "
			    "socket %d: %s", inherited_first + i,
			    strerror(errno));
			close(fd);
			goto fail;
		}
		evconnlistener_set_error_cb(l, accept_error_cb);
		w->listeners[w->nlisteners++] = l;
		if (w->id != 0)
			continue;
		if ((named = getsockname(fd, (struct sockaddr *)&ss,
		    &sslen) == 0) && ss.ss_family == AF_UNIX)
			snprintf(host, sizeof(host), "[local]");
		else if (named)
			getnameinfo((struct sockaddr *)&ss, sslen, host,
			    sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		log_info("listening on %s port %s (socket %d from systemd)",
		    host, port, inherited_first + i);
	}
	return 0;
fail:
	listener_close_all(w);
	return -1;
}

int
listener_open(struct worker *w, const struct config *cfg, char *err,
    size_t errlen)
{
	char	*list, *name, *save = NULL;

	if (inherited_n > 0)
		return open_inherited(w, err, errlen);

	if ((list = strdup(cfg->listen_addresses)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (name = strtok_r(list, ", \t", &save); name != NULL;
	    name = strtok_r(NULL, ", \t", &save)) {
		if (open_name(w, name, cfg->port, err, errlen) != 0) {
			free(list);
			listener_close_all(w);
			return -1;
		}
	}
	free(list);
	if (w->nlisteners == 0) {
		snprintf(err, errlen, "listen_addresses \"%s\" names no address",
		    cfg->listen_addresses);
		return -1;
	}
	return 0;
}

void
listener_close_all(struct worker *w)
{
	while (w->nlisteners > 0)
		evconnlistener_free(w->listeners[--w->nlisteners]);
	if (w->accept_pause != NULL)
		event_free(w->accept_pause);
	w->accept_pause = NULL;
}
