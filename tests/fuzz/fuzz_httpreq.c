/*
 * fuzz_httpreq: the metrics port's request-head parser on arbitrary bytes,
 * through the same two calls httpd.c makes, checking their contracts.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpreq	 r;
	char		*head;
	size_t		 end;

	/* httpd.c never holds more than HTTPD_MAX_HEAD bytes. */
	if (size > HTTPD_MAX_HEAD)
		size = HTTPD_MAX_HEAD;
	if ((head = malloc(size + 1)) == NULL)
		return 0;
	memcpy(head, data, size);
	head[size] = '\0';
	end = httpreq_head_end(head, size);
	assert(end <= size);
	if (end > 0) {
		head[end] = '\0';
		httpreq_parse(head, end, &r);
		assert(r.status == 0 || r.status == 400 || r.status == 404 ||
		    r.status == 405 || r.status == 413);
		assert(memchr(r.path, '\0', sizeof(r.path)) != NULL);
		if (r.status == 0)
			assert(r.path[0] == '/' && strchr(r.path, '?') == NULL);
	}
	free(head);
	return 0;
}
