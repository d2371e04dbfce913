/*
 * worker: one thread, one libevent loop.  Connections never move between
 * workers, so nothing a connection touches needs a lock; what is shared
 * (the snapshot pointer, the connection count) lives in gate.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "gate.h"
#include "health.h"
#include "listener.h"
#include "log.h"
#include "preamble.h"
#include "relay.h"
#include "worker.h"

static int	done_pipe[2] = { -1, -1 };

int
worker_done_fd(void)
{
	return done_pipe[0];
}

/* Sessions at an idle point end now; the others when they reach one. */
static void
drain_all(struct worker *w)
{
	struct conn	*c, *next;

	/* relay_drain() may close c: that moves c, never its successor. */
	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		relay_drain(c);
	}
}

static void
on_command(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct conn	*c;
	char		 cmd;

	(void)what;
	if (read(fd, &cmd, 1) != 1)
		return;
	switch (cmd) {
	case WORKER_CMD_FORCE:
		w->drain_force = true;
		/* FALLTHROUGH */
	case WORKER_CMD_DRAIN:
		listener_close_all(w);
		w->draining = true;
		drain_all(w);
		if (atomic_load_explicit(&w->nconns, memory_order_relaxed) == 0)
			event_base_loopbreak(w->base);
		break;
	case WORKER_CMD_QUIT:
		listener_close_all(w);
		TAILQ_FOREACH(c, &w->conns, entry)
			relay_abort(c);
		event_base_loopbreak(w->base);
		break;
	}
}

/*
 * The loop still turns: /healthz reads the stamp from the main thread.
 * Also take back a reserve descriptor that another worker's accept() won
 * during an exhaustion (listener.c): otherwise this worker could not
 * answer 53300 the next time, and would hold one descriptor fewer.
 */
static void
on_beat(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	(void)fd;
	(void)what;
	atomic_store_explicit(&w->last_beat, health_clock_ms(),
	    memory_order_relaxed);
	if (w->reserve_fd < 0)
		w->reserve_fd = listener_reserve_open();
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	char		 done = 1;

	event_base_dispatch(w->base);
	/* Drained and done on purpose: not a stuck loop. */
	atomic_store_explicit(&w->last_beat, HEALTH_BEAT_STOPPED,
	    memory_order_relaxed);
	listener_close_all(w);
	preamble_free_all(w);
	conn_free_all(w);
	(void)!write(done_pipe[1], &done, 1);
	return NULL;
}

/*
 * A relayed message arms the other socket's write event and disarms it
 * once sent, all in one loop turn.  With the epoll changelist those pairs
 * cancel out instead of costing two epoll_ctl calls per message.  No fd is
 * ever dup()ed here, the one case the changelist gets wrong.
 */
static struct event_base *
new_base(void)
{
	struct event_config	*cfg = event_config_new();
	struct event_base	*base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int
worker_init(struct worker *w, int id, const struct config *cfg, char *err,
    size_t errlen)
{
	struct timeval	beat = { HEALTH_BEAT_MS / 1000,
			    HEALTH_BEAT_MS % 1000 * 1000 };

	w->id = id;
	w->ctl[0] = w->ctl[1] = -1;
	w->reserve_fd = -1;
	TAILQ_INIT(&w->conns);
	TAILQ_INIT(&w->dead);
	TAILQ_INIT(&w->preambles);
	if (done_pipe[0] < 0 &&
	    pipe2(done_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(err, errlen, "could not create a pipe: %s",
		    strerror(errno));
		return -1;
	}
	atomic_store_explicit(&w->last_beat, health_clock_ms(),
	    memory_order_relaxed);
	if ((w->reserve_fd = listener_reserve_open()) < 0 ||
	    (w->base = new_base()) == NULL ||
	    conn_worker_init(w) != 0 ||
	    (w->scratch = malloc(RELAY_READ)) == NULL ||
	    pipe2(w->ctl, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    (w->ctl_event = event_new(w->base, w->ctl[0], EV_READ | EV_PERSIST,
	    on_command, w)) == NULL || event_add(w->ctl_event, NULL) != 0 ||
	    (w->beat = event_new(w->base, -1, EV_PERSIST, on_beat, w)) ==
	    NULL || event_add(w->beat, &beat) != 0) {
		snprintf(err, errlen, "could not set up worker %d: %s", id,
		    strerror(errno));
		return -1;
	}
	return listener_open(w, cfg, err, errlen);
}

int
worker_start(struct worker *w)
{
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	w->started = true;
	return 0;
}

void
worker_send(struct worker *w, char cmd)
{
	if (w->ctl[1] >= 0)
		(void)!write(w->ctl[1], &cmd, 1);
}

void
worker_finish(struct worker *w)
{
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
	listener_close_all(w);
	preamble_free_all(w);
	conn_free_all(w);
	if (w->ctl_event != NULL)
		event_free(w->ctl_event);
	if (w->beat != NULL)
		event_free(w->beat);
	w->beat = NULL;
	if (w->base != NULL)
		event_base_free(w->base);
	free(w->scratch);
	w->scratch = NULL;
	for (int i = 0; i < 2; i++)
		if (w->ctl[i] >= 0)
			close(w->ctl[i]);
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	w->reserve_fd = -1;
	w->ctl_event = NULL;
	w->base = NULL;
}
