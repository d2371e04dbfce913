/*
 * httpd: the small HTTP/1.x server behind metrics_listen (GET /metrics,
 * /healthz, /readyz) on the main thread's loop, with every resource a
 * stranger can make it spend bounded.
 */
#ifndef HTTPD_H
#define HTTPD_H

#include <stddef.h>

struct event_base;

/* The longest request head (request line and headers) read. */
#define HTTPD_MAX_HEAD		8192
/* From accept to the last byte of the response. */
#define HTTPD_DEADLINE_MS	5000
/* After the response: how long, and how much, to read for the close. */
#define HTTPD_LINGER_MS		500
#define HTTPD_LINGER_BYTES	(256 * 1024)

/* Serve on "host:port" from base (the main thread's loop). */
int httpd_listen(struct event_base *, const char *hostport, char *err,
    size_t errlen);
void httpd_close(void);

#endif
