/*
 * pgstream: message boundaries by the length word alone.  A body is
 * skipped over, never looked into, except the one status byte of a
 * ReadyForQuery; so following a 1 GB COPY costs a few steps per message.
 */
#include "pgstream.h"

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void
pgstream_scan(struct pgstream *st, const uint8_t *p, size_t n)
{
	uint32_t	len;
	size_t		k;

	while (n > 0 && !st->lost) {
		if (st->left > 0) {
			if (st->status_next) {
				st->status = (char)p[0];
				st->status_next = false;
			}
			k = n < st->left ? n : st->left;
			p += k;
			n -= k;
			st->left -= (uint32_t)k;
			continue;
		}
		st->hdr[st->have++] = *p++;
		n--;
		if (st->have < PGSTREAM_HEADER_LEN)
			continue;
		st->have = 0;
		st->type = st->hdr[0];
		if (st->type == PGSTREAM_READY_FOR_QUERY)
			st->readies++;
		else if (st->type == PGSTREAM_QUERY ||
		    st->type == PGSTREAM_SYNC ||
		    st->type == PGSTREAM_FUNCTION_CALL)
			st->turns++;
		/* The length counts itself: under 4 is no message at all. */
		if ((len = get32(st->hdr + 1)) < 4) {
			st->lost = true;
			return;
		}
		st->left = len - 4;
		st->status_next = st->type == PGSTREAM_READY_FOR_QUERY &&
		    st->left == 1;
		if (st->status_next)
			st->status = 0;
	}
}

bool
pgstream_at_boundary(const struct pgstream *st)
{
	return !st->lost && st->have == 0 && st->left == 0;
}

bool
pgstream_idle(const struct pgstream *st)
{
	return pgstream_at_boundary(st) &&
	    st->type == PGSTREAM_READY_FOR_QUERY &&
	    st->status == PGSTREAM_STATUS_IDLE;
}

bool
pgstream_answered(const struct pgstream *client, const struct pgstream *server)
{
	return server->readies > client->turns;
}

size_t
pgstream_until_boundary(const struct pgstream *st, const uint8_t *p, size_t n)
{
	struct pgstream	t = *st;
	size_t		used = 0, k;

	if (t.lost)
		return n;
	/* A header byte at a time, a body in one step. */
	while (used < n && !pgstream_at_boundary(&t)) {
		k = t.have == 0 && t.left > 0 ? t.left : 1;
		if (k > n - used)
			k = n - used;
		pgstream_scan(&t, p + used, k);
		used += k;
		if (t.lost)
			return n;
	}
	return used;
}
