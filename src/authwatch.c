/*
 * authwatch: the few authentication messages the gate must see or change so
 * that SCRAM works across it (see authwatch.h for the cases), framed from
 * bytes that may split anywhere.  No I/O happens here.
 */
#include <string.h>

#include "authwatch.h"
#include "pgproto.h"

/* A backend or frontend message: type byte, then a length word. */
#define MSG_HEADER	5u

void
authwatch_init(struct authwatch *w, enum authwatch_mode mode)
{
	memset(w, 0, sizeof(*w));
	w->mode = mode;
	/* Only a refusal needs to see what the client answers. */
	w->side[AUTHWATCH_FROM_CLIENT].done = mode != AUTHWATCH_REFUSE_PLUS;
	w->side[AUTHWATCH_FROM_BACKEND].done = mode == AUTHWATCH_OFF;
}

bool
authwatch_active(const struct authwatch *w)
{
	return !w->side[AUTHWATCH_FROM_BACKEND].done ||
	    !w->side[AUTHWATCH_FROM_CLIENT].done;
}

const uint8_t *
authwatch_held(struct authwatch *w, enum authwatch_dir dir, size_t *len)
{
	struct authwatch_side	*s = &w->side[dir];

	*len = s->have;
	s->have = 0;
	return s->buf;
}

/* Authentication is over: neither direction is looked at again. */
static void
end_all(struct authwatch *w)
{
	w->side[AUTHWATCH_FROM_BACKEND].done = true;
	w->side[AUTHWATCH_FROM_CLIENT].done = true;
}

static bool
is_plus(const uint8_t *name, size_t len)
{
	return len == sizeof(AUTHWATCH_SCRAM_PLUS) - 1 &&
	    memcmp(name, AUTHWATCH_SCRAM_PLUS, len) == 0;
}

/*
 * AuthenticationSASL is the code, then mechanism names, each ending in a
 * NUL, then an empty name that ends the message.  Counts the PLUS names
 * and the others; false when the list is not well formed.
 */
static bool
scan_offer(const uint8_t *buf, size_t total, size_t *plus, size_t *others)
{
	const uint8_t	*nul;
	size_t		 r, len;

	*plus = *others = 0;
	for (r = MSG_HEADER + 4;; r += len + 1) {
		if (r >= total ||
		    (nul = memchr(buf + r, '\0', total - r)) == NULL)
			return false;
		if ((len = (size_t)(nul - (buf + r))) == 0)
			return r + 1 == total;
		if (is_plus(buf + r, len))
			(*plus)++;
		else
			(*others)++;
	}
}

/*
 * Remove SCRAM-SHA-256-PLUS from a well-formed offer that has it and
 * something else, and fix the length word.  The message shrinks in place.
 */
static void
strip_plus(uint8_t *buf, size_t *total)
{
	size_t	r, wr, len;

	for (r = wr = MSG_HEADER + 4; buf[r] != '\0'; r += len + 1) {
		len = strlen((const char *)buf + r);
		if (is_plus(buf + r, len))
			continue;
		memmove(buf + wr, buf + r, len + 1);
		wr += len + 1;
	}
	buf[wr++] = '\0';
	pgproto_put32(buf + 1, (uint32_t)(wr - 1));
	*total = wr;
}

/* A whole message from dir is in buf: what becomes of it. */
static enum authwatch_verdict
judge(struct authwatch *w, enum authwatch_dir dir, uint8_t *buf,
    size_t *total)
{
	const size_t	plus_size = sizeof(AUTHWATCH_SCRAM_PLUS); /* with NUL */
	size_t		plus, others;
	uint32_t	code;

	if (dir == AUTHWATCH_FROM_CLIENT) {
		if (buf[0] != AUTHWATCH_MSG_PASSWORD)
			return AUTHWATCH_PASS;
		/* The client's first answer holds its choice; no other does. */
		w->side[AUTHWATCH_FROM_CLIENT].done = true;
		if (w->mode == AUTHWATCH_REFUSE_PLUS && w->plus_offered &&
		    *total >= MSG_HEADER + plus_size &&
		    memcmp(buf + MSG_HEADER, AUTHWATCH_SCRAM_PLUS,
		    plus_size) == 0)
			return AUTHWATCH_REFUSE;
		return AUTHWATCH_PASS;
	}
	if (buf[0] == AUTHWATCH_MSG_ERROR) {
		end_all(w);
		return AUTHWATCH_PASS;
	}
	if (buf[0] != AUTHWATCH_MSG_AUTH || *total < MSG_HEADER + 4)
		return AUTHWATCH_PASS;
	code = pgproto_get32(buf + MSG_HEADER);
	if (code == AUTHWATCH_AUTH_OK) {
		end_all(w);
		return AUTHWATCH_PASS;
	}
	if (code != AUTHWATCH_AUTH_SASL)
		return AUTHWATCH_PASS;	/* md5, cleartext, a SASL step */
	/* The offer is made once; the backend has nothing more to show. */
	w->side[AUTHWATCH_FROM_BACKEND].done = true;
	/*
	 * Without PLUS in it (or in a list that is not well formed, which
	 * passes as it came) the client cannot bind: nothing left to watch.
	 */
	if (!scan_offer(buf, *total, &plus, &others) || plus == 0) {
		end_all(w);
		return AUTHWATCH_PASS;
	}
	w->plus_offered = true;
	/* Without another mechanism there is no way but PLUS: libpq says so. */
	if (w->mode == AUTHWATCH_STRIP_PLUS && others > 0) {
		strip_plus(buf, total);
		w->stripped = true;
		return AUTHWATCH_REWRITE;
	}
	return AUTHWATCH_PASS;
}

/* A message too long to hold has passed: only an end matters. */
static void
passed_long(struct authwatch *w, enum authwatch_dir dir, uint8_t type)
{
	if (dir == AUTHWATCH_FROM_BACKEND && type == AUTHWATCH_MSG_ERROR)
		end_all(w);
	else if (dir == AUTHWATCH_FROM_CLIENT &&
	    type == AUTHWATCH_MSG_PASSWORD)
		w->side[AUTHWATCH_FROM_CLIENT].done = true;
}

enum authwatch_verdict
authwatch_feed(struct authwatch *w, enum authwatch_dir dir, const uint8_t *p,
    size_t n, size_t *used, const uint8_t **out, size_t *outlen)
{
	struct authwatch_side	*s = &w->side[dir];
	enum authwatch_verdict	 v;
	size_t			 take, total;
	uint32_t		 len;

	*used = 0;
	*out = NULL;
	*outlen = 0;
	if (s->done) {
		/* What was held when the watch ended goes first. */
		if (s->have > 0) {
			*out = authwatch_held(w, dir, outlen);
			return AUTHWATCH_PASS;
		}
		*out = p;
		*outlen = *used = n;
		return AUTHWATCH_PASS;
	}
	if (s->skip > 0) {
		take = n < s->skip ? n : s->skip;
		s->skip -= (uint32_t)take;
		*out = p;
		*outlen = *used = take;
		if (s->skip == 0)
			passed_long(w, dir, s->skip_type);
		return AUTHWATCH_PASS;
	}
	if (s->have < MSG_HEADER) {
		take = MSG_HEADER - s->have;
		if (take > n)
			take = n;
		memcpy(s->buf + s->have, p, take);
		s->have += take;
		*used = take;
		if (s->have < MSG_HEADER)
			return AUTHWATCH_HOLD;
		p += take;
		n -= take;
	}
	len = pgproto_get32(s->buf + 1);
	if (len < 4) {
		/* Not the protocol: the peers will say so, not the gate. */
		end_all(w);
		*out = authwatch_held(w, dir, outlen);
		return AUTHWATCH_PASS;
	}
	if (len > AUTHWATCH_HOLD_MAX - 1) {
		/* Passed on as it comes, header first. */
		w->oversize = true;
		s->skip = len - 4;
		s->skip_type = s->buf[0];
		*out = authwatch_held(w, dir, outlen);
		return AUTHWATCH_PASS;
	}
	total = 1 + (size_t)len;
	take = total - s->have;
	if (take > n)
		take = n;
	memcpy(s->buf + s->have, p, take);
	s->have += take;
	*used += take;
	if (s->have < total)
		return AUTHWATCH_HOLD;
	s->have = 0;
	v = judge(w, dir, s->buf, &total);
	if (v != AUTHWATCH_REFUSE) {
		*out = s->buf;
		*outlen = total;
	}
	return v;
}
