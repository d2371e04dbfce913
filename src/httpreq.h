/*
 * httpreq: the request head of httpd.c's HTTP/1.x, parsed into what the
 * server needs to answer (a refusal status, or a method and a path).
 * Pure: bytes in, a verdict out; the unit tests and a fuzzer call it.
 */
#ifndef HTTPREQ_H
#define HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>

struct httpreq {
	int	status;		/* 0: answer path; else refuse with this */
	bool	head_only;	/* HEAD: the answer without its body */
	char	path[256];	/* "/...": the target, without its query */
};

/*
 * The length of the head in buf, through the empty line that ends it
 * (CR LF or a bare LF), or 0 when it has not all arrived.
 */
size_t httpreq_head_end(const char *buf, size_t len);

/*
 * Parse the len bytes of a head through its empty line (head[len] must be
 * a NUL; the head is modified in place).  Refusals: 400 (malformed, a NUL
 * byte, not HTTP/1.0 or 1.1), 413 (a body: Content-Length above 0 or
 * Transfer-Encoding), 405 (not GET or HEAD), 404 (a target that is not a
 * path, such as "*" or "http://host/", or one too long for any route).
 */
void httpreq_parse(char *head, size_t len, struct httpreq *);

#endif
