/*
 * fuzz_proxyproto: the PROXY header parser on arbitrary bytes, checking its
 * contract: a header it accepts lies within the bytes given, and any prefix
 * of those bytes is then still waiting rather than refused.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto_header h, h2;
	enum proxyproto_status	 st, det;
	char			 note[PROXYPROTO_NOTE_MAX];
	uint8_t			*copy;

	/* An exact-size copy, so ASan sees any read past the end. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	st = proxyproto_parse(copy, size, &h);
	det = proxyproto_detect(copy, size);
	switch (st) {
	case PROXYPROTO_OK:
		assert(det == PROXYPROTO_OK);
		assert(h.version == 1 || h.version == 2);
		assert(h.length > 0 && h.length <= size &&
		    h.length <= PROXYPROTO_MAX);
		assert(h.local || h.srclen > 0);
		assert(memchr(h.aws_vpce, '\0', sizeof(h.aws_vpce)) != NULL);
		assert(proxyproto_note(&h, note, sizeof(note)) < sizeof(note));
		/* The header alone parses the same. */
		assert(proxyproto_parse(copy, h.length, &h2) == PROXYPROTO_OK);
		assert(h2.length == h.length);
		/* One byte short of it: waiting, not refused. */
		assert(proxyproto_parse(copy, h.length - 1, &h2) ==
		    PROXYPROTO_NEED_MORE);
		break;
	case PROXYPROTO_BAD:
		assert(det == PROXYPROTO_OK && h.error != NULL);
		break;
	case PROXYPROTO_NEED_MORE:
		assert(det != PROXYPROTO_NOT_PROXY && size < PROXYPROTO_MAX);
		break;
	case PROXYPROTO_NOT_PROXY:
		assert(det == PROXYPROTO_NOT_PROXY);
		break;
	}
	free(copy);
	return 0;
}
