/*
 * cancelkey: the BackendKeyData scanner (pure) and the table of live
 * sessions' keys, one mutex over a fixed array: a few lookups a second at
 * most, and a slot is freed by the session that took it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cancelkey.h"

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void
cancelkey_scan_init(struct cancelkey_scan *s)
{
	memset(s, 0, sizeof(*s));
}

enum cancelkey_result
cancelkey_feed(struct cancelkey_scan *s, const uint8_t *p, size_t n)
{
	if (s->done)
		return s->found ? CANCELKEY_FOUND : CANCELKEY_NONE;
	while (n > 0) {
		if (s->nhdr < 5) {
			s->hdr[s->nhdr++] = *p++;
			n--;
			if (s->nhdr < 5)
				continue;
			uint32_t len = be32(s->hdr + 1);

			/* A length below 4 is no message: stop trusting. */
			if (len < 4 || s->hdr[0] == CANCELKEY_MSG_READY ||
			    s->hdr[0] == CANCELKEY_MSG_ERROR) {
				s->done = true;
				break;
			}
			s->left = len - 4;
			s->in_key = s->hdr[0] == CANCELKEY_MSG_KEYDATA &&
			    s->left >= 8 && s->left <= sizeof(s->body);
			s->nbody = 0;
			if (s->left == 0)
				s->nhdr = 0;
			continue;
		}
		size_t take = n < s->left ? n : s->left;

		if (s->in_key) {
			memcpy(s->body + s->nbody, p, take);
			s->nbody += take;
		}
		p += take;
		n -= take;
		s->left -= (uint32_t)take;
		if (s->left > 0)
			continue;
		s->nhdr = 0;
		if (s->in_key) {
			s->key.pid = be32(s->body);
			s->key.keylen = s->nbody - 4;
			memcpy(s->key.key, s->body + 4, s->key.keylen);
			s->found = true;
			s->done = true;
			break;
		}
	}
	if (s->done)
		return s->found ? CANCELKEY_FOUND : CANCELKEY_NONE;
	return CANCELKEY_MORE;
}

int
cancelkey_from_request(const uint8_t *pkt, size_t len, struct cancelkey *key)
{
	if (len < PGPROTO_CANCEL_MIN_LEN || len > PGPROTO_CANCEL_MAX_LEN ||
	    be32(pkt) != len || be32(pkt + 4) != PGPROTO_CANCEL_REQUEST_CODE)
		return -1;
	key->pid = be32(pkt + 8);
	key->keylen = len - 12;
	memcpy(key->key, pkt + 12, key->keylen);
	return 0;
}

struct slot {
	bool		 used;
	struct cancelkey key;
	uint8_t		*value;
	size_t		 len;
};

static pthread_mutex_t	lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot	table[CANCELKEY_MAX];

static bool
same(const struct cancelkey *a, const struct cancelkey *b)
{
	return a->pid == b->pid && a->keylen == b->keylen &&
	    memcmp(a->key, b->key, a->keylen) == 0;
}

int
cancelkey_add(const struct cancelkey *key, const void *value, size_t len)
{
	uint8_t	*copy;
	int	 found = -1;

	if (len > CANCELKEY_VALUE_MAX || (copy = malloc(len)) == NULL)
		return -1;
	memcpy(copy, value, len);
	pthread_mutex_lock(&lock);
	/* Start at the pid's own place, so a lookup is usually one step. */
	for (size_t i = 0, at = key->pid % CANCELKEY_MAX; i < CANCELKEY_MAX;
	    i++, at = (at + 1) % CANCELKEY_MAX) {
		if (table[at].used && same(&table[at].key, key)) {
			found = -1;
			break;
		}
		if (!table[at].used && found < 0)
			found = (int)at;
	}
	if (found >= 0) {
		table[found].used = true;
		table[found].key = *key;
		table[found].value = copy;
		table[found].len = len;
		copy = NULL;
	}
	pthread_mutex_unlock(&lock);
	free(copy);
	return found;
}

void
cancelkey_remove(int slot)
{
	uint8_t	*value = NULL;

	if (slot < 0 || slot >= CANCELKEY_MAX)
		return;
	pthread_mutex_lock(&lock);
	if (table[slot].used) {
		value = table[slot].value;
		memset(&table[slot], 0, sizeof(table[slot]));
	}
	pthread_mutex_unlock(&lock);
	free(value);
}

bool
cancelkey_lookup(const struct cancelkey *key, void *value, size_t len)
{
	bool	found = false;

	pthread_mutex_lock(&lock);
	for (size_t i = 0, at = key->pid % CANCELKEY_MAX; i < CANCELKEY_MAX;
	    i++, at = (at + 1) % CANCELKEY_MAX)
		if (table[at].used && same(&table[at].key, key)) {
			if (table[at].len == len) {
				memcpy(value, table[at].value, len);
				found = true;
			}
			break;
		}
	pthread_mutex_unlock(&lock);
	return found;
}
