/*
 * startcap: the startup-phase counts behind max_startup_connections and
 * max_startup_connections_per_host.  One table for all workers, under a
 * mutex held for a hash lookup; fixed size, so counting a connection
 * never allocates.
 */
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "startcap.h"

#define BUCKETS		(STARTCAP_SOURCES * 2)	/* a power of two */
#define NIL		(-1)

struct node {
	struct startcap_key	key;
	unsigned		count;
	int			next;	/* in its bucket, or in the free list */
};

static pthread_mutex_t	lock = PTHREAD_MUTEX_INITIALIZER;
static struct node	nodes[STARTCAP_SOURCES];
static int		buckets[BUCKETS];
static int		free_list = NIL;
static bool		ready;
static unsigned		total;

/* Under lock: the free list and empty buckets, on first use. */
static void
init_locked(void)
{
	for (int i = 0; i < BUCKETS; i++)
		buckets[i] = NIL;
	for (int i = 0; i < STARTCAP_SOURCES; i++)
		nodes[i].next = i + 1 < STARTCAP_SOURCES ? i + 1 : NIL;
	free_list = 0;
	ready = true;
}

void
startcap_key_of(struct startcap_key *k, const struct sockaddr *sa)
{
	memset(k, 0, sizeof(*k));
	k->family = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->
		    sin6_addr.s6_addr;

		/* A host gets a /64 to itself: one source, not 2^64. */
		memcpy(k->addr, a, 8);
	} else
		k->family = AF_UNIX;
}

void
startcap_key_name(const struct startcap_key *k, char *buf, size_t len)
{
	char	text[INET6_ADDRSTRLEN] = "?";

	if (k->family == AF_INET) {
		inet_ntop(AF_INET, k->addr, text, sizeof(text));
		snprintf(buf, len, "%s", text);
	} else if (k->family == AF_INET6) {
		inet_ntop(AF_INET6, k->addr, text, sizeof(text));
		snprintf(buf, len, "%s/64", text);
	} else
		snprintf(buf, len, "[local]");
}

/* FNV-1a over the key. */
static unsigned
hash(const struct startcap_key *k)
{
	const uint8_t	*p = (const uint8_t *)k;
	uint32_t	 h = 2166136261u;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h & (BUCKETS - 1);
}

/* Under lock: the node of k and, for unlinking, the link that points to it. */
static int
find_locked(const struct startcap_key *k, int **link)
{
	int	*l = &buckets[hash(k)];

	while (*l != NIL && memcmp(&nodes[*l].key, k, sizeof(*k)) != 0)
		l = &nodes[*l].next;
	*link = l;
	return *l;
}

enum startcap_verdict
startcap_enter(const struct startcap_key *k, unsigned cap,
    unsigned cap_per_host)
{
	enum startcap_verdict	 v = STARTCAP_OK;
	int			*link, i;

	pthread_mutex_lock(&lock);
	if (!ready)
		init_locked();
	i = find_locked(k, &link);
	if (total >= cap)
		v = STARTCAP_FULL;
	else if (i != NIL && nodes[i].count >= cap_per_host)
		v = STARTCAP_HOST_FULL;
	else if (i == NIL && free_list == NIL)
		v = STARTCAP_FULL;	/* STARTCAP_SOURCES sources at once */
	else {
		if (i == NIL) {
			i = free_list;
			free_list = nodes[i].next;
			nodes[i].key = *k;
			nodes[i].count = 0;
			nodes[i].next = NIL;
			*link = i;
		}
		nodes[i].count++;
		total++;
	}
	pthread_mutex_unlock(&lock);
	return v;
}

void
startcap_leave(const struct startcap_key *k)
{
	int	*link, i;

	pthread_mutex_lock(&lock);
	if (ready && (i = find_locked(k, &link)) != NIL) {
		total--;
		if (--nodes[i].count == 0) {
			*link = nodes[i].next;
			nodes[i].next = free_list;
			free_list = i;
		}
	}
	pthread_mutex_unlock(&lock);
}

unsigned
startcap_total(void)
{
	unsigned	n;

	pthread_mutex_lock(&lock);
	n = total;
	pthread_mutex_unlock(&lock);
	return n;
}

int
startcap_top(struct startcap_source *top, int n)
{
	int	have = 0;

	pthread_mutex_lock(&lock);
	for (int b = 0; ready && b < BUCKETS; b++) {
		for (int i = buckets[b]; i != NIL; i = nodes[i].next) {
			int	at = have < n ? have++ : n;

			/* Insertion into the sorted few; the smallest drops. */
			if (at == n && (n == 0 ||
			    nodes[i].count <= top[n - 1].count))
				continue;
			if (at == n)
				at = n - 1;
			while (at > 0 && top[at - 1].count < nodes[i].count) {
				top[at] = top[at - 1];
				at--;
			}
			top[at].key = nodes[i].key;
			top[at].count = nodes[i].count;
		}
	}
	pthread_mutex_unlock(&lock);
	return have;
}
