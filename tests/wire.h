/*
 * wire.h: the few byte-level helpers the test clients (rawprobe,
 * directssl, fakebackend) share.  They deliberately do not use
 * src/pgproto.c: a test client that encodes the protocol on its own cannot
 * share a bug with the codec it tests.
 */
#ifndef TESTS_WIRE_H
#define TESTS_WIRE_H

#include <stdint.h>
#include <string.h>
#include <time.h>

static inline void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A NUL-terminated string as the protocol writes it; returns its size. */
static inline size_t put_cstring(unsigned char *p, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(p, s, n);
	return n;
}

/* Seconds on the monotonic clock, for deadlines. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
