/*
 * preamble: what comes before a connection's startup phase.  With
 * proxy_protocol on, a load balancer's PROXY header is read here and the
 * client's address in it handed to client_accept().
 */
#ifndef PREAMBLE_H
#define PREAMBLE_H

#include <sys/socket.h>

struct worker;

/* Take an accepted socket: to client_accept() now, or after its header. */
void preamble_accept(struct worker *, int fd, const struct sockaddr *,
    int salen);

/* Close every socket still waiting for its header (worker shutdown). */
void preamble_free_all(struct worker *);

#endif
