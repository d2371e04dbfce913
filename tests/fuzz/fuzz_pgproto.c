/*
 * fuzz_pgproto: the startup-packet parser on arbitrary bytes, and the
 * ErrorResponse builder on arbitrary text, checking their contracts.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgproto_packet	pkt;
	enum pgproto_status	st;
	uint8_t			*copy, out[PGPROTO_ERROR_MAX];
	char			*text;
	size_t			n;

	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	st = pgproto_parse_startup(copy, size, &pkt);
	if (st == PGPROTO_OK) {
		assert(pkt.length >= 8 && pkt.length <= size &&
		    pkt.length <= PGPROTO_MAX_PACKET);
		assert(memchr(pkt.user, '\0', sizeof(pkt.user)) != NULL);
		assert(memchr(pkt.database, '\0', sizeof(pkt.database)) != NULL);
		if (pkt.kind == PGPROTO_STARTUP)
			assert(pkt.user[0] != '\0');
	}
	assert(pgproto_status_message(st) != NULL);
	{
		char	field[32];

		if (pgproto_error_field(copy, size, 'M', field,
		    sizeof(field)) == 0)
			assert(strlen(field) < sizeof(field));
	}
	free(copy);

	/* The same bytes as message text: always a well-formed response. */
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	n = pgproto_build_error(out, sizeof(out), "08P01", text, text);
	assert(n <= sizeof(out));
	assert(out[0] == 'E' && pgproto_get32(out + 1) == n - 1);
	assert(out[n - 1] == '\0');
	free(text);
	return 0;
}
