/*
 * backend: reaching the database.  Connects to each resolved address in
 * turn, then forwards the client's StartupMessage or CancelRequest.
 */
#ifndef BACKEND_H
#define BACKEND_H

#include <stdbool.h>

struct conn;

/*
 * Connect to the backend and forward c->startup.  A session continues in
 * relay.c; a cancel request waits for the backend to close.  Failures end
 * the connection with an ErrorResponse (08006) naming the backend.
 */
void backend_connect(struct conn *, bool cancel);

#endif
