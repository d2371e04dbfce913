/*
 * listener: the listening sockets named by listen_addresses and port, or
 * handed over by systemd.
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

/*
 * Socket activation: from now on listener_open() accepts on descriptors
 * first .. first + n - 1 (already listening) instead of binding
 * listen_addresses and port.  Once every worker has its copies, the
 * originals are closed with listener_close_inherited().
 */
void listener_use_inherited(int first, int n);
void listener_close_inherited(void);

#endif
