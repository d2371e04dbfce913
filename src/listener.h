/*
 * listener: the listening sockets named by listen_addresses and port.
 */
#ifndef LISTENER_H
#define LISTENER_H

#include <stddef.h>

struct worker;
struct config;

/* Open every address for w; on any failure close them all and set err. */
int listener_open(struct worker *, const struct config *, char *err,
    size_t errlen);
void listener_close_all(struct worker *);

/*
 * A descriptor held in reserve (/dev/null), so that a worker out of them
 * can still accept one connection to answer it; -1 on failure.
 */
int listener_reserve_open(void);

#endif
