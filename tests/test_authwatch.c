/*
 * test_authwatch: the authentication watch of SCRAM through the gate.  Every
 * stream is fed the way relay.c feeds it, cut at every byte, and what comes
 * out on each side is compared with what a client or backend must get.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authwatch.h"
#include "pgproto.h"

#define PLUS		AUTHWATCH_SCRAM_PLUS
#define PLAIN		"SCRAM-SHA-256"
#define STREAM_MAX	16384

#define FROM_BACKEND	AUTHWATCH_FROM_BACKEND
#define FROM_CLIENT	AUTHWATCH_FROM_CLIENT

/* ------------------------------------------------------------------ */
/* Messages, built byte by byte                                         */
/* ------------------------------------------------------------------ */

struct msg {
	uint8_t	buf[STREAM_MAX];
	size_t	len;
	size_t	start;		/* of the message being built */
};

static void
m_bytes(struct msg *m, const void *p, size_t n)
{
	assert_true(m->len + n <= sizeof(m->buf));
	memcpy(m->buf + m->len, p, n);
	m->len += n;
}

static void
m_u32(struct msg *m, uint32_t v)
{
	uint8_t	b[4];

	pgproto_put32(b, v);
	m_bytes(m, b, 4);
}

static void
m_str(struct msg *m, const char *s)
{
	m_bytes(m, s, strlen(s) + 1);
}

/* A message of type t; its length word is filled in by m_end(). */
static void
m_begin(struct msg *m, char t)
{
	m->start = m->len;
	m_bytes(m, &t, 1);
	m_u32(m, 0);
}

static void
m_end(struct msg *m)
{
	pgproto_put32(m->buf + m->start + 1, (uint32_t)(m->len - m->start - 1));
}

/* AuthenticationSASL with the names given, NULL-terminated. */
static void
m_sasl(struct msg *m, ...)
{
	va_list		 ap;
	const char	*name;

	m_begin(m, 'R');
	m_u32(m, AUTHWATCH_AUTH_SASL);
	va_start(ap, m);
	while ((name = va_arg(ap, const char *)) != NULL)
		m_str(m, name);
	va_end(ap);
	m_bytes(m, "", 1);
	m_end(m);
}

static void
m_auth(struct msg *m, uint32_t code, const char *data)
{
	m_begin(m, 'R');
	m_u32(m, code);
	if (data != NULL)
		m_bytes(m, data, strlen(data));
	m_end(m);
}

static void
m_error(struct msg *m, const char *text)
{
	m_begin(m, 'E');
	m_bytes(m, "SFATAL", 7);
	m_bytes(m, "C28P01", 7);
	m_bytes(m, "M", 1);
	m_str(m, text);
	m_bytes(m, "", 1);
	m_end(m);
}

/* SASLInitialResponse: mechanism, length of the data, the data. */
static void
m_initial(struct msg *m, const char *mech, const char *data)
{
	m_begin(m, 'p');
	m_str(m, mech);
	m_u32(m, (uint32_t)strlen(data));
	m_bytes(m, data, strlen(data));
	m_end(m);
}

/* What a backend says after AuthenticationOk, up to ReadyForQuery. */
static void
m_after_ok(struct msg *m)
{
	m_begin(m, 'S');
	m_str(m, "server_version");
	m_str(m, "15.8");
	m_end(m);
	m_begin(m, 'K');
	m_u32(m, 4242);
	m_u32(m, 0x5ec7e7);
	m_end(m);
	m_begin(m, 'Z');
	m_bytes(m, "I", 1);
	m_end(m);
}

/* A whole SCRAM exchange from the backend, offering the names given. */
static void
backend_scram(struct msg *m, bool offer_plus)
{
	if (offer_plus)
		m_sasl(m, PLUS, PLAIN, NULL);
	else
		m_sasl(m, PLAIN, NULL);
	m_auth(m, 11, "r=clientnonceservernonce,s=c2FsdA==,i=4096");
	m_auth(m, 12, "v=c2lnbmF0dXJl");
	m_auth(m, AUTHWATCH_AUTH_OK, NULL);
	m_after_ok(m);
}

/* ------------------------------------------------------------------ */
/* The relay, as relay.c drives the watcher                             */
/* ------------------------------------------------------------------ */

struct sim {
	struct authwatch	w;
	bool			dropped;	/* relay freed the watcher */
	bool			refused;
	int			rewrites;
	uint8_t			out[2][STREAM_MAX];	/* [dir] sent on */
	size_t			outlen[2];
};

static void
sim_init(struct sim *s, enum authwatch_mode mode)
{
	memset(s, 0, sizeof(*s));
	authwatch_init(&s->w, mode);
}

static void
sim_append(struct sim *s, enum authwatch_dir dir, const uint8_t *p, size_t n)
{
	assert_true(s->outlen[dir] + n <= sizeof(s->out[dir]));
	if (n > 0)
		memcpy(s->out[dir] + s->outlen[dir], p, n);
	s->outlen[dir] += n;
}

/* One read of n bytes from dir. */
static void
sim_feed(struct sim *s, enum authwatch_dir dir, const uint8_t *p, size_t n)
{
	enum authwatch_verdict	 v;
	const uint8_t		*out, *held;
	size_t			 used, outlen, len;

	assert_false(s->refused);
	if (s->dropped) {
		sim_append(s, dir, p, n);
		return;
	}
	while (n > 0) {
		v = authwatch_feed(&s->w, dir, p, n, &used, &out, &outlen);
		assert_true(used <= n);
		assert_true(used > 0 || outlen > 0);	/* always progress */
		if (v == AUTHWATCH_REFUSE) {
			assert_int_equal(outlen, 0);
			s->refused = true;
			return;
		}
		if (v == AUTHWATCH_HOLD)
			assert_int_equal(outlen, 0);
		if (v == AUTHWATCH_REWRITE)
			s->rewrites++;
		assert_true(outlen == 0 || out != NULL);
		sim_append(s, dir, out, outlen);
		p += used;
		n -= used;
	}
	if (!authwatch_active(&s->w)) {
		held = authwatch_held(&s->w, FROM_CLIENT, &len);
		sim_append(s, FROM_CLIENT, held, len);
		held = authwatch_held(&s->w, FROM_BACKEND, &len);
		sim_append(s, FROM_BACKEND, held, len);
		s->dropped = true;
	}
}

/* A stream from dir in reads cut at the offsets given (ascending). */
static void
sim_feed_cut(struct sim *s, enum authwatch_dir dir, const struct msg *m,
    const size_t *cuts, size_t ncuts)
{
	size_t	at = 0;

	for (size_t i = 0; i <= ncuts && !s->refused; i++) {
		size_t	end = i < ncuts ? cuts[i] : m->len;

		sim_feed(s, dir, m->buf + at, end - at);
		at = end;
	}
}

static void
sim_feed_bytewise(struct sim *s, enum authwatch_dir dir, const struct msg *m)
{
	for (size_t i = 0; i < m->len && !s->refused; i++)
		sim_feed(s, dir, m->buf + i, 1);
}

static void
assert_out(const struct sim *s, enum authwatch_dir dir, const struct msg *want)
{
	assert_int_equal(s->outlen[dir], want->len);
	assert_memory_equal(s->out[dir], want->buf, want->len);
}

/* ------------------------------------------------------------------ */
/* Plaintext client leg: the PLUS offer is removed                      */
/* ------------------------------------------------------------------ */

static void
test_strip_removes_plus_and_fixes_the_length_at_every_split(void **state)
{
	struct msg	in = { 0 }, want = { 0 };
	struct sim	s;

	(void)state;
	backend_scram(&in, true);
	backend_scram(&want, false);
	for (size_t a = 0; a <= in.len; a++)
		for (size_t b = a; b <= in.len; b += 7) {
			size_t	cuts[2] = { a, b };

			sim_init(&s, AUTHWATCH_STRIP_PLUS);
			sim_feed_cut(&s, FROM_BACKEND, &in, cuts, 2);
			assert_false(s.refused);
			assert_int_equal(s.rewrites, 1);
			assert_true(s.w.stripped);
			assert_true(s.dropped);
			assert_out(&s, FROM_BACKEND, &want);
		}
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed_bytewise(&s, FROM_BACKEND, &in);
	assert_out(&s, FROM_BACKEND, &want);
}

static void
test_strip_keeps_other_mechanisms_in_their_order(void **state)
{
	struct msg	in = { 0 }, want = { 0 };
	struct sim	s;

	(void)state;
	m_sasl(&in, "X-FIRST", PLUS, PLAIN, PLUS, "X-LAST", NULL);
	m_sasl(&want, "X-FIRST", PLAIN, "X-LAST", NULL);
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len);
	assert_int_equal(s.rewrites, 1);
	assert_out(&s, FROM_BACKEND, &want);
}

static void
test_strip_leaves_an_offer_without_plus_alone(void **state)
{
	struct msg	in = { 0 };
	struct sim	s;

	(void)state;
	backend_scram(&in, false);
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len);
	assert_int_equal(s.rewrites, 0);
	assert_false(s.w.stripped);
	assert_out(&s, FROM_BACKEND, &in);
}

/* Without SCRAM-SHA-256 there is nothing to fall back to: libpq decides. */
static void
test_strip_leaves_plus_alone_when_it_is_the_only_mechanism(void **state)
{
	struct msg	in = { 0 };
	struct sim	s;

	(void)state;
	m_sasl(&in, PLUS, NULL);
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len);
	assert_int_equal(s.rewrites, 0);
	assert_out(&s, FROM_BACKEND, &in);
}

/* A list that is not well formed passes exactly as it came. */
static void
test_strip_passes_malformed_lists_unchanged(void **state)
{
	struct msg	in;
	struct sim	s;

	(void)state;
	/* No empty name at the end. */
	memset(&in, 0, sizeof(in));
	m_begin(&in, 'R');
	m_u32(&in, AUTHWATCH_AUTH_SASL);
	m_str(&in, PLUS);
	m_str(&in, PLAIN);
	m_end(&in);
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len);
	assert_int_equal(s.rewrites, 0);
	assert_out(&s, FROM_BACKEND, &in);

	/* A last name without its NUL. */
	memset(&in, 0, sizeof(in));
	m_begin(&in, 'R');
	m_u32(&in, AUTHWATCH_AUTH_SASL);
	m_str(&in, PLUS);
	m_bytes(&in, PLAIN, strlen(PLAIN));
	m_end(&in);
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len);
	assert_int_equal(s.rewrites, 0);
	assert_out(&s, FROM_BACKEND, &in);

	/* Bytes after the empty name. */
	memset(&in, 0, sizeof(in));
	m_begin(&in, 'R');
	m_u32(&in, AUTHWATCH_AUTH_SASL);
	m_str(&in, PLUS);
	m_str(&in, PLAIN);
	m_bytes(&in, "\0junk", 5);
	m_end(&in);
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len);
	assert_int_equal(s.rewrites, 0);
	assert_out(&s, FROM_BACKEND, &in);

	/* The code alone, no list at all. */
	memset(&in, 0, sizeof(in));
	m_auth(&in, AUTHWATCH_AUTH_SASL, NULL);
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len);
	assert_int_equal(s.rewrites, 0);
	assert_out(&s, FROM_BACKEND, &in);
}

/* md5 (and what else the backend asks) goes by; Ok still ends the watch. */
static void
test_strip_passes_other_authentication_and_ends_at_ok(void **state)
{
	struct msg	in = { 0 }, later = { 0 };
	struct sim	s;

	(void)state;
	m_auth(&in, 5, "salt");
	m_auth(&in, AUTHWATCH_AUTH_OK, NULL);
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len);
	assert_true(s.dropped);
	assert_out(&s, FROM_BACKEND, &in);
	/* After Ok, even a SASL offer is just bytes: nothing is parsed. */
	m_sasl(&later, PLUS, PLAIN, NULL);
	sim_feed(&s, FROM_BACKEND, later.buf, later.len);
	assert_int_equal(s.rewrites, 0);
	assert_int_equal(s.outlen[FROM_BACKEND], in.len + later.len);
}

static void
test_error_response_ends_the_watch(void **state)
{
	struct msg	in = { 0 };
	struct sim	s;

	(void)state;
	m_error(&in, "password authentication failed for user \"alice\"");
	for (size_t cut = 0; cut <= in.len; cut++) {
		sim_init(&s, AUTHWATCH_REFUSE_PLUS);
		sim_feed_cut(&s, FROM_BACKEND, &in, &cut, 1);
		assert_true(s.dropped);
		assert_out(&s, FROM_BACKEND, &in);
	}
}

/* The client's leg needs no watch when the client cannot bind anyway. */
static void
test_strip_never_looks_at_the_client(void **state)
{
	struct msg	in = { 0 };
	struct sim	s;

	(void)state;
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	assert_true(s.w.side[FROM_CLIENT].done);
	m_initial(&in, PLUS, "p=tls-server-end-point,,n=,r=nonce");
	sim_feed(&s, FROM_CLIENT, in.buf, in.len);
	assert_false(s.refused);
	assert_out(&s, FROM_CLIENT, &in);
}

/* ------------------------------------------------------------------ */
/* TLS on both legs, different certificates: a client binding is refused */
/* ------------------------------------------------------------------ */

static void
test_refuse_plus_initial_response_at_every_split(void **state)
{
	struct msg	offer = { 0 }, in = { 0 };
	struct sim	s;

	(void)state;
	m_sasl(&offer, PLUS, PLAIN, NULL);
	m_initial(&in, PLUS, "p=tls-server-end-point,,n=,r=rOprNGfwEbeRWgbNEkqO");
	for (size_t a = 0; a <= in.len; a++)
		for (size_t b = a; b <= in.len; b++) {
			size_t	cuts[2] = { a, b };

			sim_init(&s, AUTHWATCH_REFUSE_PLUS);
			sim_feed(&s, FROM_BACKEND, offer.buf, offer.len);
			/* The offer itself goes through as it is. */
			assert_out(&s, FROM_BACKEND, &offer);
			sim_feed_cut(&s, FROM_CLIENT, &in, cuts, 2);
			assert_true(s.refused);
			/* Not one byte of the refused message went on. */
			assert_int_equal(s.outlen[FROM_CLIENT], 0);
		}
}

static void
test_refuse_lets_scram_without_binding_through(void **state)
{
	struct msg	offer = { 0 }, in = { 0 }, sasl = { 0 };
	struct sim	s;
	size_t		first;

	(void)state;
	backend_scram(&offer, true);
	m_sasl(&sasl, PLUS, PLAIN, NULL);
	first = sasl.len + 7;	/* the offer, and part of what follows */
	/* 'n': the client does not bind; 'y': it could, and thinks we cannot. */
	m_initial(&in, PLAIN, "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
	m_initial(&in, PLAIN, "y,,n=,r=rOprNGfwEbeRWgbNEkqO");
	for (size_t cut = 0; cut <= in.len; cut++) {
		sim_init(&s, AUTHWATCH_REFUSE_PLUS);
		/* SASL offer first, as a real backend does. */
		sim_feed(&s, FROM_BACKEND, offer.buf, first);
		assert_true(s.w.plus_offered);
		sim_feed_cut(&s, FROM_CLIENT, &in, &cut, 1);
		assert_false(s.refused);
		assert_true(s.w.side[FROM_CLIENT].done);
		sim_feed(&s, FROM_BACKEND, offer.buf + first, offer.len - first);
		assert_true(s.dropped);
		assert_out(&s, FROM_CLIENT, &in);
		assert_out(&s, FROM_BACKEND, &offer);
		assert_int_equal(s.rewrites, 0);
	}
}

/* A name that only begins like PLUS is another mechanism. */
static void
test_refuse_only_the_exact_mechanism_name(void **state)
{
	struct msg	offer = { 0 }, in = { 0 };
	struct sim	s;

	(void)state;
	m_sasl(&offer, PLUS, PLAIN, NULL);
	m_initial(&in, PLUS "-X", "p=tls-server-end-point,,n=,r=x");
	sim_init(&s, AUTHWATCH_REFUSE_PLUS);
	sim_feed(&s, FROM_BACKEND, offer.buf, offer.len);
	sim_feed(&s, FROM_CLIENT, in.buf, in.len);
	assert_false(s.refused);
	assert_out(&s, FROM_CLIENT, &in);
}

/* An offer without PLUS: the backend refuses a client that picks it. */
static void
test_refuse_only_what_was_offered(void **state)
{
	struct msg	offer = { 0 }, in = { 0 };
	struct sim	s;

	(void)state;
	m_sasl(&offer, PLAIN, NULL);
	m_initial(&in, PLUS, "p=tls-server-end-point,,n=,r=x");
	sim_init(&s, AUTHWATCH_REFUSE_PLUS);
	sim_feed(&s, FROM_BACKEND, offer.buf, offer.len);
	assert_false(s.w.plus_offered);
	assert_true(s.dropped);		/* nothing left to watch */
	sim_feed(&s, FROM_CLIENT, in.buf, in.len);
	assert_false(s.refused);
	assert_out(&s, FROM_CLIENT, &in);
}

/* Before any SASL offer, a 'p' is a password, whatever it says. */
static void
test_refuse_needs_the_offer_first(void **state)
{
	struct msg	md5 = { 0 }, in = { 0 };
	struct sim	s;

	(void)state;
	m_auth(&md5, 3, NULL);		/* cleartext password */
	m_begin(&in, 'p');
	m_str(&in, PLUS);
	m_end(&in);
	sim_init(&s, AUTHWATCH_REFUSE_PLUS);
	sim_feed(&s, FROM_BACKEND, md5.buf, md5.len);
	sim_feed(&s, FROM_CLIENT, in.buf, in.len);
	assert_false(s.refused);
	assert_out(&s, FROM_CLIENT, &in);
}

/*
 * A client that sent part of a message when the backend ended the
 * authentication gets it passed on, in order, when the watch is dropped.
 */
static void
test_held_bytes_go_on_when_the_other_side_ends_it(void **state)
{
	struct msg	in = { 0 }, ok = { 0 }, want = { 0 };
	struct sim	s;

	(void)state;
	m_begin(&in, 'Q');
	m_str(&in, "SELECT 1");
	m_end(&in);
	m_auth(&ok, AUTHWATCH_AUTH_OK, NULL);
	for (size_t cut = 1; cut < in.len; cut++) {
		sim_init(&s, AUTHWATCH_REFUSE_PLUS);
		sim_feed(&s, FROM_CLIENT, in.buf, cut);
		assert_int_equal(s.outlen[FROM_CLIENT], 0);
		sim_feed(&s, FROM_BACKEND, ok.buf, ok.len);
		assert_true(s.dropped);
		assert_int_equal(s.outlen[FROM_CLIENT], cut);
		sim_feed(&s, FROM_CLIENT, in.buf + cut, in.len - cut);
		memset(&want, 0, sizeof(want));
		m_bytes(&want, in.buf, in.len);
		assert_out(&s, FROM_CLIENT, &want);
	}
}

/* ------------------------------------------------------------------ */
/* Bad and big input                                                    */
/* ------------------------------------------------------------------ */

/* A length word under 4 is not the protocol: everything passes as it is. */
static void
test_malformed_length_passes_everything_unchanged(void **state)
{
	static const uint8_t	lens[][4] = { { 0, 0, 0, 0 }, { 0, 0, 0, 3 } };
	struct msg		in;
	struct sim		s;

	(void)state;
	for (size_t i = 0; i < 2; i++)
		for (size_t dir = 0; dir < 2; dir++)
			for (size_t cut = 0; cut <= 30; cut++) {
				memset(&in, 0, sizeof(in));
				m_bytes(&in, "R", 1);
				m_bytes(&in, lens[i], 4);
				m_sasl(&in, PLUS, PLAIN, NULL);
				sim_init(&s, AUTHWATCH_REFUSE_PLUS);
				sim_feed_cut(&s, (enum authwatch_dir)dir, &in,
				    &cut, 1);
				assert_true(s.dropped);
				assert_out(&s, (enum authwatch_dir)dir, &in);
			}
}

/*
 * Longer than AUTHWATCH_HOLD_MAX: passed on as it arrives, unmodified,
 * and what follows is still watched.
 */
static void
test_oversize_message_streams_through_unmodified(void **state)
{
	struct msg	in = { 0 }, want = { 0 }, big = { 0 };
	char		name[AUTHWATCH_HOLD_MAX + 100];
	struct sim	s;

	(void)state;
	memset(name, 'X', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	m_sasl(&big, PLUS, name, PLAIN, NULL);
	m_bytes(&in, big.buf, big.len);
	m_sasl(&in, PLUS, PLAIN, NULL);
	m_bytes(&want, big.buf, big.len);
	m_sasl(&want, PLAIN, NULL);
	for (size_t cut = 0; cut <= in.len; cut += 13) {
		sim_init(&s, AUTHWATCH_STRIP_PLUS);
		sim_feed_cut(&s, FROM_BACKEND, &in, &cut, 1);
		assert_true(s.w.oversize);
		assert_int_equal(s.rewrites, 1);
		assert_out(&s, FROM_BACKEND, &want);
	}
	sim_init(&s, AUTHWATCH_STRIP_PLUS);
	sim_feed_bytewise(&s, FROM_BACKEND, &in);
	assert_out(&s, FROM_BACKEND, &want);
}

/* The largest length word: no overflow, the bytes simply pass. */
static void
test_huge_length_word_passes_without_overflow(void **state)
{
	struct msg	in = { 0 };
	struct sim	s;

	(void)state;
	m_bytes(&in, "R\xff\xff\xff\xff", 5);
	m_bytes(&in, "0123456789", 10);
	for (size_t dir = 0; dir < 2; dir++) {
		sim_init(&s, AUTHWATCH_REFUSE_PLUS);
		sim_feed_bytewise(&s, (enum authwatch_dir)dir, &in);
		assert_out(&s, (enum authwatch_dir)dir, &in);
		assert_true(s.w.side[dir].skip == 0xfffffffbu - 10);
	}
}

static void
test_oversize_error_response_ends_the_watch(void **state)
{
	struct msg	in = { 0 };
	char		text[AUTHWATCH_HOLD_MAX * 2];
	struct sim	s;

	(void)state;
	memset(text, 'e', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	m_error(&in, text);
	sim_init(&s, AUTHWATCH_REFUSE_PLUS);
	sim_feed(&s, FROM_BACKEND, in.buf, in.len - 1);
	assert_false(s.dropped);
	sim_feed(&s, FROM_BACKEND, in.buf + in.len - 1, 1);
	assert_true(s.dropped);
	assert_out(&s, FROM_BACKEND, &in);
}

static uint32_t
next_random(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

/*
 * Random bytes in random reads, both directions interleaved.  Without a
 * PLUS to strip or refuse, each direction's output is its input, once the
 * watch is dropped or what is held is counted in.
 */
static void
test_random_streams_come_out_as_they_went_in(void **state)
{
	static struct msg	in[2];
	static struct sim	s;
	uint32_t		seed = 20261201;
	size_t			at[2], held, len;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		for (int d = 0; d < 2; d++) {
			memset(&in[d], 0, sizeof(in[d]));
			in[d].len = next_random(&seed) % 3000;
			for (size_t i = 0; i < in[d].len; i++) {
				uint32_t r = next_random(&seed);

				/* Mostly small lengths and message types. */
				in[d].buf[i] = r % 4 == 0 ? (uint8_t)"RpE"[r % 3] :
				    (uint8_t)(r % 4 == 1 ? r % 16 : r);
			}
			at[d] = 0;
		}
		sim_init(&s, round % 2 ? AUTHWATCH_REFUSE_PLUS :
		    AUTHWATCH_STRIP_PLUS);
		while (at[0] < in[0].len || at[1] < in[1].len) {
			int	d = (int)(next_random(&seed) % 2);
			size_t	n = next_random(&seed) % 200;

			if (n > in[d].len - at[d])
				n = in[d].len - at[d];
			sim_feed(&s, (enum authwatch_dir)d, in[d].buf + at[d],
			    n);
			at[d] += n;
		}
		for (int d = 0; d < 2; d++) {
			(void)authwatch_held(&s.w, (enum authwatch_dir)d, &len);
			held = s.dropped ? 0 : len;
			assert_int_equal(s.outlen[d] + held, in[d].len);
			assert_memory_equal(s.out[d], in[d].buf, s.outlen[d]);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strip_removes_plus_and_fixes_the_length_at_every_split),
		cmocka_unit_test(test_strip_keeps_other_mechanisms_in_their_order),
		cmocka_unit_test(test_strip_leaves_an_offer_without_plus_alone),
		cmocka_unit_test(test_strip_leaves_plus_alone_when_it_is_the_only_mechanism),
		cmocka_unit_test(test_strip_passes_malformed_lists_unchanged),
		cmocka_unit_test(test_strip_passes_other_authentication_and_ends_at_ok),
		cmocka_unit_test(test_error_response_ends_the_watch),
		cmocka_unit_test(test_strip_never_looks_at_the_client),
		cmocka_unit_test(test_refuse_plus_initial_response_at_every_split),
		cmocka_unit_test(test_refuse_lets_scram_without_binding_through),
		cmocka_unit_test(test_refuse_only_the_exact_mechanism_name),
		cmocka_unit_test(test_refuse_only_what_was_offered),
		cmocka_unit_test(test_refuse_needs_the_offer_first),
		cmocka_unit_test(test_held_bytes_go_on_when_the_other_side_ends_it),
		cmocka_unit_test(test_malformed_length_passes_everything_unchanged),
		cmocka_unit_test(test_oversize_message_streams_through_unmodified),
		cmocka_unit_test(test_huge_length_word_passes_without_overflow),
		cmocka_unit_test(test_oversize_error_response_ends_the_watch),
		cmocka_unit_test(test_random_streams_come_out_as_they_went_in),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
