/*
 * client: the client's startup phase, from accept until the StartupMessage
 * or CancelRequest goes to the backend: SSL negotiation, the TLS
 * handshake, and every refusal the policy calls for.
 */
#ifndef CLIENT_H
#define CLIENT_H

struct conn_peer;
struct worker;

/* Take ownership of an accepted socket (from listener.c or preamble.c). */
void client_accept(struct worker *, int fd, const struct conn_peer *);

#endif
