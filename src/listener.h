/*
 * listener: the listening sockets named by listen_addresses and port.
 */
#ifndef LISTENER_H
#define LISTENER_H

#include <stddef.h>

struct gate;
struct config;

/* Open every address; on any failure close them all and set err. */
int listener_open(struct gate *, const struct config *, char *err,
    size_t errlen);
void listener_close_all(void);

#endif
