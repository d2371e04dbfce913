/*
 * backend: the connection from the proxy to the database server.
 */
#include <sys/socket.h>


#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "backend.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "relay.h"

static void try_address(struct conn *);

static void
connect_failed(struct conn *c, int err)
{
	char	msg[512];

	bufferevent_free(c->backend);
	c->backend = NULL;
	if (++c->backend_try < c->snap->nbackend) {
		try_address(c);
		return;
	}
	snprintf(msg, sizeof(msg), "could not connect to backend %s: %s",
	    c->snap->backend_name, strerror(err));
	if (c->cancel) {
		/* PostgreSQL never answers a CancelRequest; just close. */
		log_info("cancel request from host=%s port=%s dropped: %s",
		    c->host, c->port, msg);
		conn_free(c);
		return;
	}
	conn_refuse(c, METRICS_REFUSED_BACKEND, "08006", msg, NULL);
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

static void
connected(struct conn *c)
{
	struct bufferevent	*bev = c->backend;

	bufferevent_set_timeouts(bev, NULL, NULL);
	gate_tune_socket(bufferevent_getfd(bev),
	    c->snap->backend[c->backend_try].ss.ss_family, c->snap->cfg);
	if (bufferevent_write_buffer(bev, c->startup) != 0) {
		conn_refuse(c, METRICS_REFUSED_BACKEND, "53200", "out of memory",
		    NULL);
		return;
	}
	if (c->cancel) {
		metrics.cancels++;
		c->state = CONN_CANCEL;
		log_info("forwarding cancel request from host=%s port=%s to "
		    "backend %s", c->host, c->port, c->snap->backend_name);
		bufferevent_setcb(bev, cancel_read, NULL, cancel_event, c);
		bufferevent_enable(bev, EV_READ);
		return;
	}
	relay_start(c);
}

static void
connect_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		connected(c);
	else if (what & BEV_EVENT_TIMEOUT)
		connect_failed(c, ETIMEDOUT);
	else
		connect_failed(c, EVUTIL_SOCKET_ERROR());
}

static void
try_address(struct conn *c)
{
	const struct backend_addr	*a = &c->snap->backend[c->backend_try];
	int				 ms =
					    c->snap->cfg->backend_connect_timeout;
	struct timeval			 tv = { ms / 1000, (ms % 1000) * 1000 };

	c->backend = bufferevent_socket_new(c->gate->base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	if (c->backend == NULL) {
		conn_refuse(c, METRICS_REFUSED_BACKEND, "53200", "out of memory",
		    NULL);
		return;
	}
	bufferevent_setcb(c->backend, NULL, NULL, connect_event, c);
	/* While connecting, the write timeout is the connect timeout. */
	bufferevent_set_timeouts(c->backend, NULL, &tv);
	if (bufferevent_socket_connect(c->backend,
	    (const struct sockaddr *)&a->ss, (int)a->len) != 0)
		connect_failed(c, errno);
}

void
backend_connect(struct conn *c, bool cancel)
{
	c->backend_try = 0;
	c->cancel = cancel;
	try_address(c);
}
