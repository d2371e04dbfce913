/*
 * worker: an event loop on a thread of its own, with its own listening
 * sockets and its own connections.  The main thread talks to it through a
 * pipe, one command byte at a time.
 */
#ifndef WORKER_H
#define WORKER_H

#include <stddef.h>

struct config;
struct worker;

#define WORKER_CMD_DRAIN	'T'	/* stop accepting; end when idle */
#define WORKER_CMD_FORCE	'K'	/* drain: end sessions between
					   messages, idle or not */
#define WORKER_CMD_QUIT		'Q'	/* close every connection, end */

/* Event loop, command pipe and listening sockets; nothing runs yet. */
int worker_init(struct worker *, int id, const struct config *, char *err,
    size_t errlen);
int worker_start(struct worker *);
void worker_send(struct worker *, char cmd);

/* After its loop ended: join the thread and free what is left. */
void worker_finish(struct worker *);

/* The main thread's end of "a worker is done": readable once per worker. */
int worker_done_fd(void);

#endif
