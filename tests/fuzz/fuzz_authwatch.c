/*
 * fuzz_authwatch: the authentication watch on arbitrary bytes from both
 * sides, cut into arbitrary reads, fed through the entry point relay.c uses,
 * checking its contract: progress on every call, output only ever from the
 * input or a held message no longer than AUTHWATCH_HOLD_MAX, and each
 * side's output its input unless a message was rewritten or refused.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authwatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/*
 * The first byte picks the mode; then each chunk is a control byte (bit 7:
 * the direction, bits 0-6: the read's length) and that many bytes.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct authwatch	 w;
	enum authwatch_verdict	 v;
	enum authwatch_dir	 dir;
	const uint8_t		*out, *held;
	uint8_t			*copy;
	size_t			 in_total[2] = { 0, 0 }, out_total[2] = { 0, 0 };
	size_t			 used, outlen, n, len, at = 1;
	bool			 refused = false, rewritten = false;
	volatile uint8_t	 sum = 0;

	if (size < 1)
		return 0;
	authwatch_init(&w, data[0] & 1 ? AUTHWATCH_REFUSE_PLUS :
	    AUTHWATCH_STRIP_PLUS);
	while (at < size && !refused && authwatch_active(&w)) {
		dir = data[at] & 0x80 ? AUTHWATCH_FROM_CLIENT :
		    AUTHWATCH_FROM_BACKEND;
		n = data[at] & 0x7f;
		at++;
		if (n > size - at)
			n = size - at;
		/* A heap copy of exactly n bytes: ASan sees a read past it. */
		if ((copy = malloc(n ? n : 1)) == NULL)
			return 0;
		memcpy(copy, data + at, n);
		at += n;
		in_total[dir] += n;
		for (const uint8_t *p = copy; n > 0;) {
			v = authwatch_feed(&w, dir, p, n, &used, &out, &outlen);
			assert(used <= n);
			assert(used > 0 || outlen > 0);
			if (v == AUTHWATCH_REFUSE) {
				assert(dir == AUTHWATCH_FROM_CLIENT && outlen == 0);
				refused = true;
				break;
			}
			if (v == AUTHWATCH_HOLD)
				assert(outlen == 0);
			if (v == AUTHWATCH_REWRITE) {
				assert(dir == AUTHWATCH_FROM_BACKEND);
				assert(w.mode == AUTHWATCH_STRIP_PLUS);
				rewritten = true;
			}
			assert(outlen == 0 || out != NULL);
			assert((out >= p && out + outlen <= p + n) ||
			    (out >= w.side[dir].buf && out + outlen <=
			    w.side[dir].buf + AUTHWATCH_HOLD_MAX) || outlen == 0);
			for (size_t i = 0; i < outlen; i++)	/* readable */
				sum += out[i];
			out_total[dir] += outlen;
			p += used;
			n -= used;
		}
		free(copy);
	}
	(void)sum;
	if (refused)
		return 0;
	for (int d = 0; d < 2; d++) {
		held = authwatch_held(&w, (enum authwatch_dir)d, &len);
		assert(len <= AUTHWATCH_HOLD_MAX && (len == 0 || held != NULL));
		out_total[d] += len;
	}
	/* Only a rewrite changes a length, and it only ever removes. */
	assert(out_total[AUTHWATCH_FROM_CLIENT] ==
	    in_total[AUTHWATCH_FROM_CLIENT]);
	if (rewritten)
		assert(out_total[AUTHWATCH_FROM_BACKEND] <
		    in_total[AUTHWATCH_FROM_BACKEND]);
	else
		assert(out_total[AUTHWATCH_FROM_BACKEND] ==
		    in_total[AUTHWATCH_FROM_BACKEND]);
	return 0;
}
