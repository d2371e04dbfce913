/*
 * httpreq: reads an HTTP/1.x request head (RFC 9112) strictly enough for
 * a server that takes one GET or HEAD and no body: anything it does not
 * need is refused rather than guessed at.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "httpreq.h"

size_t
httpreq_head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* The next line of *p (its CR LF or LF cut off), or NULL at the end. */
static char *
next_line(char **p)
{
	char	*line = *p, *nl;

	if ((nl = strchr(line, '\n')) == NULL)
		return NULL;
	*nl = '\0';
	if (nl > line && nl[-1] == '\r')
		nl[-1] = '\0';
	*p = nl + 1;
	return line;
}

/* A Content-Length value that announces a body (or is not a number). */
static bool
announces_body(const char *value)
{
	size_t	zeros = strspn(value, "0"), digits = strspn(value, "0123456789");

	return digits == 0 || value[digits] != '\0' || zeros != digits;
}

void
httpreq_parse(char *head, size_t len, struct httpreq *r)
{
	char	*p = head, *line, *method, *target, *version, *q, *save = NULL;

	memset(r, 0, sizeof(*r));
	/* A NUL would hide what follows it from the string functions. */
	if (memchr(head, '\0', len) != NULL) {
		r->status = 400;
		return;
	}
	/* RFC 9112 2.2: empty lines before the request line are ignored. */
	while ((line = next_line(&p)) != NULL && *line == '\0')
		;
	if (line == NULL || (method = strtok_r(line, " ", &save)) == NULL ||
	    (target = strtok_r(NULL, " ", &save)) == NULL ||
	    (version = strtok_r(NULL, " ", &save)) == NULL ||
	    strtok_r(NULL, " ", &save) != NULL ||
	    (strcmp(version, "HTTP/1.0") != 0 &&
	    strcmp(version, "HTTP/1.1") != 0)) {
		r->status = 400;
		return;
	}
	while ((line = next_line(&p)) != NULL && *line != '\0') {
		char	*value = strchr(line, ':'), *end;

		/* No obsolete line folding, no field without a name. */
		if (value == NULL || value == line || *line == ' ' ||
		    *line == '\t') {
			r->status = 400;
			return;
		}
		*value++ = '\0';
		value += strspn(value, " \t");
		for (end = value + strlen(value); end > value &&
		    (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		/* One request and no body: nothing here would read one. */
		if (strcasecmp(line, "Transfer-Encoding") == 0 ||
		    (strcasecmp(line, "Content-Length") == 0 &&
		    announces_body(value)))
			r->status = 413;
	}
	if (r->status != 0)
		return;
	if (strcmp(method, "HEAD") == 0)
		r->head_only = true;
	else if (strcmp(method, "GET") != 0) {
		r->status = 405;
		return;
	}
	if ((q = strchr(target, '?')) != NULL)
		*q = '\0';
	/* No route is that long, nor outside the origin form ("/..."). */
	if (*target != '/' || strlen(target) >= sizeof(r->path)) {
		r->status = 404;
		return;
	}
	snprintf(r->path, sizeof(r->path), "%s", target);
}
