/*
 * test_pgproto: the startup-phase codec.  Every packet here is built byte by
 * byte, the way a client (or an attacker) would put it on the wire.
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

#include "pgproto.h"

#define PROTO_3_0	0x00030000u
#define PROTO_3_2	0x00030002u
#define PROTO_2_0	0x00020000u
#define PROTO_4_0	0x00040000u

/* ------------------------------------------------------------------ */
/* Packet builder                                                       */
/* ------------------------------------------------------------------ */

struct pkt_builder {
	uint8_t	buf[PGPROTO_MAX_PACKET + 512];
	size_t	len;
};

static void
pb_start(struct pkt_builder *b, uint32_t code)
{
	memset(b->buf, 0, sizeof(b->buf));
	b->len = 4;		/* the length word, filled by pb_finish */
	pgproto_put32(b->buf + b->len, code);
	b->len += 4;
}

static void
pb_u32(struct pkt_builder *b, uint32_t v)
{
	assert_true(b->len + 4 <= sizeof(b->buf));
	pgproto_put32(b->buf + b->len, v);
	b->len += 4;
}

static void
pb_bytes(struct pkt_builder *b, const void *p, size_t n)
{
	assert_true(b->len + n <= sizeof(b->buf));
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

/* A string and its NUL. */
static void
pb_str(struct pkt_builder *b, const char *s)
{
	pb_bytes(b, s, strlen(s) + 1);
}

static void
pb_param(struct pkt_builder *b, const char *name, const char *value)
{
	pb_str(b, name);
	pb_str(b, value);
}

static void
pb_nul(struct pkt_builder *b)
{
	pb_bytes(b, "", 1);
}

/* Writes the real length into the length word; returns it. */
static size_t
pb_finish(struct pkt_builder *b)
{
	pgproto_put32(b->buf, (uint32_t)b->len);
	return b->len;
}

/* A valid 3.0 StartupMessage: user, database, terminator. */
static size_t
build_valid_startup(struct pkt_builder *b, uint32_t version)
{
	pb_start(b, version);
	pb_param(b, "user", "alice");
	pb_param(b, "database", "shop");
	pb_nul(b);
	return pb_finish(b);
}

static size_t
build_cancel(struct pkt_builder *b, uint32_t pid, size_t keylen)
{
	pb_start(b, PGPROTO_CANCEL_REQUEST_CODE);
	pb_u32(b, pid);
	for (size_t i = 0; i < keylen; i++) {
		uint8_t k = (uint8_t)(0x40 + i);

		pb_bytes(b, &k, 1);
	}
	return pb_finish(b);
}

/*
 * Parse from a heap copy of exactly len bytes, so ASan sees any read past
 * the end of what the caller said was there.
 */
static enum pgproto_status
parse_exact(const uint8_t *buf, size_t len, struct pgproto_packet *pkt)
{
	uint8_t			*copy = malloc(len ? len : 1);
	enum pgproto_status	 st;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	st = pgproto_parse_startup(copy, len, pkt);
	free(copy);
	return st;
}

static enum pgproto_status
parse_builder(const struct pkt_builder *b, struct pgproto_packet *pkt)
{
	memset(pkt, 0xA5, sizeof(*pkt));
	return parse_exact(b->buf, b->len, pkt);
}

/* ------------------------------------------------------------------ */
/* StartupMessage                                                       */
/* ------------------------------------------------------------------ */

static void
test_startup_v3_0_extracts_user_and_database(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;
	size_t			len = build_valid_startup(&b, PROTO_3_0);

	(void)state;
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.kind, PGPROTO_STARTUP);
	assert_int_equal(pkt.length, len);
	assert_int_equal(pkt.code, PROTO_3_0);
	assert_string_equal(pkt.user, "alice");
	assert_string_equal(pkt.database, "shop");
}

static void
test_startup_v3_2_is_accepted(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	build_valid_startup(&b, PROTO_3_2);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.kind, PGPROTO_STARTUP);
	assert_int_equal(pkt.code, PROTO_3_2);
	assert_int_equal(PGPROTO_MINOR(pkt.code), 2);
	assert_string_equal(pkt.user, "alice");
}

static void
test_database_defaults_to_user_when_absent(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "bob");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_string_equal(pkt.user, "bob");
	assert_string_equal(pkt.database, "bob");
}

static void
test_database_defaults_to_user_when_empty(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "database", "");
	pb_param(&b, "user", "carol");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_string_equal(pkt.database, "carol");
}

static void
test_database_before_user_is_still_extracted(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "database", "inventory");
	pb_param(&b, "user", "dave");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_string_equal(pkt.user, "dave");
	assert_string_equal(pkt.database, "inventory");
}

/* The packet inside a struct with a guard after it, to catch overflow. */
struct guarded_packet {
	struct pgproto_packet	pkt;
	uint8_t			guard[64];
};

static void
test_long_names_are_truncated_to_name_max_minus_one(void **state)
{
	struct pkt_builder	b;
	struct guarded_packet	g;
	char			longuser[300], longdb[300];
	uint8_t			guard[sizeof(g.guard)];

	(void)state;
	memset(longuser, 'u', sizeof(longuser) - 1);
	longuser[sizeof(longuser) - 1] = '\0';
	memset(longdb, 'd', sizeof(longdb) - 1);
	longdb[sizeof(longdb) - 1] = '\0';
	longuser[0] = 'U';	/* to check the prefix is what is kept */

	/* database first: an overflowing user would run into it. */
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "database", longdb);
	pb_param(&b, "user", longuser);
	pb_nul(&b);
	pb_finish(&b);

	memset(&g, 0xA5, sizeof(g));
	memset(guard, 0xA5, sizeof(guard));
	assert_int_equal(parse_exact(b.buf, b.len, &g.pkt), PGPROTO_OK);
	assert_int_equal(strnlen(g.pkt.user, PGPROTO_NAME_MAX),
	    PGPROTO_NAME_MAX - 1);
	assert_int_equal(strnlen(g.pkt.database, PGPROTO_NAME_MAX),
	    PGPROTO_NAME_MAX - 1);
	assert_memory_equal(g.pkt.user, longuser, PGPROTO_NAME_MAX - 1);
	assert_memory_equal(g.pkt.database, longdb, PGPROTO_NAME_MAX - 1);
	assert_memory_equal(g.guard, guard, sizeof(guard));
}

static void
test_name_of_name_max_minus_one_bytes_is_kept_whole(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;
	char			name[PGPROTO_NAME_MAX];
	char			longer[PGPROTO_NAME_MAX + 1];

	(void)state;
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", name);
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_string_equal(pkt.user, name);
	assert_string_equal(pkt.database, name);

	/* One byte more (exactly PGPROTO_NAME_MAX) loses the last byte. */
	memset(longer, 'm', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", longer);
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(strlen(pkt.user), PGPROTO_NAME_MAX - 1);
	assert_memory_equal(pkt.user, longer, PGPROTO_NAME_MAX - 1);
}

static void
test_extra_parameters_are_ignored(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "application_name", "psql");
	pb_param(&b, "user", "erin");
	pb_param(&b, "client_encoding", "UTF8");
	pb_param(&b, "options", "-c search_path=x");
	pb_param(&b, "database", "erp");
	pb_param(&b, "_pq_.protocol_managed_params", "");
	pb_param(&b, "replication", "false");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_string_equal(pkt.user, "erin");
	assert_string_equal(pkt.database, "erp");
}

static void
test_parameter_names_match_user_and_database_exactly(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	/* "username", "users", "use" and "User" are not "user". */
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "username", "x");
	pb_param(&b, "users", "y");
	pb_param(&b, "use", "z");
	pb_param(&b, "User", "w");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_NO_USER);

	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "frank");
	pb_param(&b, "databases", "nope");
	pb_param(&b, "dbname", "nope");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_string_equal(pkt.database, "frank");
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */
/* ------------------------------------------------------------------ */

static void
test_ssl_request_is_recognised(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PGPROTO_SSL_REQUEST_CODE);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.kind, PGPROTO_SSL_REQUEST);
	assert_int_equal(pkt.length, 8);
	assert_int_equal(pkt.code, PGPROTO_SSL_REQUEST_CODE);
}

static void
test_gssenc_request_is_recognised(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PGPROTO_GSSENC_REQUEST_CODE);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.kind, PGPROTO_GSSENC_REQUEST);
	assert_int_equal(pkt.length, 8);
}

static void
test_request_codes_are_1234_5678_to_5680(void **state)
{
	(void)state;
	assert_int_equal(PGPROTO_CANCEL_REQUEST_CODE, (1234u << 16) | 5678u);
	assert_int_equal(PGPROTO_SSL_REQUEST_CODE, (1234u << 16) | 5679u);
	assert_int_equal(PGPROTO_GSSENC_REQUEST_CODE, (1234u << 16) | 5680u);
}

static void
test_cancel_request_16_bytes_extracts_pid(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	assert_int_equal(build_cancel(&b, 0x01020304u, 4), 16);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.kind, PGPROTO_CANCEL_REQUEST);
	assert_int_equal(pkt.length, 16);
	assert_int_equal(pkt.cancel_pid, 0x01020304u);
}

static void
test_cancel_request_v3_2_with_32_byte_key_is_accepted(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	assert_int_equal(build_cancel(&b, 777, 32), 44);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.kind, PGPROTO_CANCEL_REQUEST);
	assert_int_equal(pkt.length, 44);
	assert_int_equal(pkt.cancel_pid, 777);
}

static void
test_cancel_request_with_256_byte_key_is_accepted(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	assert_int_equal(build_cancel(&b, 9, 256), PGPROTO_CANCEL_MAX_LEN);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.kind, PGPROTO_CANCEL_REQUEST);
	assert_int_equal(pkt.length, 268);
}

static void
test_cancel_request_with_257_byte_key_is_rejected(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	assert_int_equal(build_cancel(&b, 9, 257), 269);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_REQUEST);
}

static void
test_cancel_request_shorter_than_16_bytes_is_rejected(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	/* 15 bytes: a 3-byte key. */
	assert_int_equal(build_cancel(&b, 9, 3), 15);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_REQUEST);
	/* 12 bytes: a process id and no key at all. */
	assert_int_equal(build_cancel(&b, 9, 0), 12);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_REQUEST);
	/* 8 bytes: not even a process id. */
	pb_start(&b, PGPROTO_CANCEL_REQUEST_CODE);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_REQUEST);
}

static void
test_ssl_request_with_length_12_is_rejected(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PGPROTO_SSL_REQUEST_CODE);
	pb_u32(&b, 0);
	assert_int_equal(pb_finish(&b), 12);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_REQUEST);

	pb_start(&b, PGPROTO_GSSENC_REQUEST_CODE);
	pb_u32(&b, 0);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_REQUEST);
}

static void
test_unknown_1234_request_code_is_rejected(void **state)
{
	static const uint32_t codes[] = {
		(1234u << 16) | 5681u,	/* the next one after GSSENC */
		(1234u << 16) | 5677u,
		(1234u << 16) | 0u,
		(1234u << 16) | 0xffffu,
	};
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		pb_start(&b, codes[i]);
		pb_u32(&b, 1);
		pb_u32(&b, 2);
		pb_finish(&b);
		if (parse_builder(&b, &pkt) != PGPROTO_BAD_REQUEST)
			fail_msg("code 1234.%u not rejected as BAD_REQUEST",
			    (unsigned)PGPROTO_MINOR(codes[i]));
	}
}

/* ------------------------------------------------------------------ */
/* Framing                                                              */
/* ------------------------------------------------------------------ */

static void
check_every_prefix_is_incomplete(const uint8_t *buf, size_t len)
{
	struct pgproto_packet	pkt;

	for (size_t n = 0; n < len; n++) {
		enum pgproto_status st;

		pkt.length = 0xdeadbeefu;
		st = parse_exact(buf, n, &pkt);
		if (st != PGPROTO_INCOMPLETE)
			fail_msg("prefix of %zu/%zu bytes: status %d, expected "
			    "INCOMPLETE", n, len, (int)st);
		if (n < PGPROTO_HEADER_LEN && pkt.length != 0)
			fail_msg("prefix of %zu bytes: length %u before the "
			    "length word arrived, expected 0", n,
			    (unsigned)pkt.length);
		if (n >= PGPROTO_HEADER_LEN && pkt.length != len)
			fail_msg("prefix of %zu bytes: length %u, expected %zu",
			    n, (unsigned)pkt.length, len);
	}
	pkt.length = 0;
	assert_int_equal(parse_exact(buf, len, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.length, len);
}

static void
test_every_prefix_of_a_valid_packet_is_incomplete(void **state)
{
	struct pkt_builder	b;

	(void)state;
	build_valid_startup(&b, PROTO_3_0);
	check_every_prefix_is_incomplete(b.buf, b.len);

	pb_start(&b, PGPROTO_SSL_REQUEST_CODE);
	pb_finish(&b);
	check_every_prefix_is_incomplete(b.buf, b.len);

	build_cancel(&b, 1, 4);
	check_every_prefix_is_incomplete(b.buf, b.len);

	build_cancel(&b, 1, 256);
	check_every_prefix_is_incomplete(b.buf, b.len);
}

static void
test_bytes_after_the_packet_are_not_part_of_it(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;
	size_t			len;

	(void)state;
	/* An SSLRequest followed at once by the TLS ClientHello. */
	pb_start(&b, PGPROTO_SSL_REQUEST_CODE);
	len = pb_finish(&b);
	pb_bytes(&b, "\x16\x03\x01\x02\x00", 5);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.kind, PGPROTO_SSL_REQUEST);
	assert_int_equal(pkt.length, len);

	len = build_valid_startup(&b, PROTO_3_0);
	pb_bytes(&b, "Q\0\0\0\x05x", 6);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_OK);
	assert_int_equal(pkt.length, len);
	assert_string_equal(pkt.user, "alice");
}

static void
test_length_below_8_is_rejected_with_only_the_length_word(void **state)
{
	struct pgproto_packet	pkt;
	uint8_t			hdr[4];

	(void)state;
	for (uint32_t l = 0; l < 8; l++) {
		pgproto_put32(hdr, l);
		if (parse_exact(hdr, sizeof(hdr), &pkt) != PGPROTO_BAD_LENGTH)
			fail_msg("length word %u not rejected", (unsigned)l);
	}
}

static void
test_length_above_10004_is_rejected_before_payload_arrives(void **state)
{
	static const uint32_t lengths[] = {
		PGPROTO_MAX_PACKET + 1, 10005, 65536, 0x7fffffffu, 0x80000000u,
		0xffffffffu,
	};
	struct pgproto_packet	pkt;
	uint8_t			hdr[4];

	(void)state;
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		pgproto_put32(hdr, lengths[i]);
		if (parse_exact(hdr, sizeof(hdr), &pkt) != PGPROTO_BAD_LENGTH)
			fail_msg("length word %u not rejected with 4 bytes",
			    (unsigned)lengths[i]);
	}
}

static void
test_length_10004_is_waited_for_then_accepted(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;
	char			big[PGPROTO_MAX_PAYLOAD];
	size_t			fill;

	(void)state;
	/* 8 header + "user\0g\0" (7) + "options\0" (8) + value + NUL + final NUL */
	fill = PGPROTO_MAX_PACKET - 8 - 7 - 8 - 1 - 1;
	assert_true(fill < sizeof(big));
	memset(big, 'o', fill);
	big[fill] = '\0';
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "g");
	pb_param(&b, "options", big);
	pb_nul(&b);
	assert_int_equal(pb_finish(&b), PGPROTO_MAX_PACKET);

	assert_int_equal(parse_exact(b.buf, 4, &pkt), PGPROTO_INCOMPLETE);
	assert_int_equal(pkt.length, PGPROTO_MAX_PACKET);
	assert_int_equal(parse_exact(b.buf, b.len - 1, &pkt),
	    PGPROTO_INCOMPLETE);
	assert_int_equal(parse_exact(b.buf, b.len, &pkt), PGPROTO_OK);
	assert_string_equal(pkt.user, "g");
}

static void
test_startup_of_length_8_has_no_terminator(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	assert_int_equal(pb_finish(&b), 8);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_LAYOUT);
}

static void
test_protocol_2_and_4_are_rejected_as_bad_version(void **state)
{
	static const uint32_t versions[] = {
		PROTO_2_0, PROTO_4_0, 0x00000000u, 0x00010000u, 0xffff0000u,
	};
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		build_valid_startup(&b, versions[i]);
		if (parse_builder(&b, &pkt) != PGPROTO_BAD_VERSION)
			fail_msg("protocol %u.%u not rejected as BAD_VERSION",
			    (unsigned)PGPROTO_MAJOR(versions[i]),
			    (unsigned)PGPROTO_MINOR(versions[i]));
	}
}

/* ------------------------------------------------------------------ */
/* Layout                                                               */
/* ------------------------------------------------------------------ */

static void
test_missing_final_terminator_is_bad_layout(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "alice");
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_LAYOUT);
}

static void
test_terminator_must_be_the_last_byte(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "alice");
	pb_nul(&b);
	pb_bytes(&b, "junk", 4);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_LAYOUT);

	/* Two terminators. */
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "alice");
	pb_nul(&b);
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_LAYOUT);
}

static void
test_name_without_value_is_bad_layout(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	/* "database" then the terminator: the terminator becomes its value. */
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "alice");
	pb_str(&b, "database");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_LAYOUT);

	/* A name that runs into the end of the packet. */
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "alice");
	pb_bytes(&b, "application_name", 16);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_LAYOUT);

	/* A name with its NUL as the very last byte. */
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "alice");
	pb_str(&b, "database");
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_LAYOUT);
}

static void
test_value_without_nul_is_bad_layout(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_str(&b, "user");
	pb_bytes(&b, "alice", 5);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_BAD_LAYOUT);
}

static void
test_startup_without_user_is_no_user(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "database", "shop");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_NO_USER);

	/* Only the terminator. */
	pb_start(&b, PROTO_3_0);
	pb_nul(&b);
	assert_int_equal(pb_finish(&b), 9);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_NO_USER);
}

static void
test_empty_user_is_no_user(void **state)
{
	struct pkt_builder	b;
	struct pgproto_packet	pkt;

	(void)state;
	pb_start(&b, PROTO_3_0);
	pb_param(&b, "user", "");
	pb_param(&b, "database", "shop");
	pb_nul(&b);
	pb_finish(&b);
	assert_int_equal(parse_builder(&b, &pkt), PGPROTO_NO_USER);
}

/* ------------------------------------------------------------------ */
/* Status strings                                                       */
/* ------------------------------------------------------------------ */

static void
test_status_sqlstates_match_postgresql(void **state)
{
	(void)state;
	assert_string_equal(pgproto_status_sqlstate(PGPROTO_BAD_LENGTH), "08P01");
	assert_string_equal(pgproto_status_sqlstate(PGPROTO_BAD_LAYOUT), "08P01");
	assert_string_equal(pgproto_status_sqlstate(PGPROTO_BAD_REQUEST), "08P01");
	assert_string_equal(pgproto_status_sqlstate(PGPROTO_BAD_VERSION), "0A000");
	assert_string_equal(pgproto_status_sqlstate(PGPROTO_NO_USER), "28000");
}

static void
test_status_messages_are_non_empty_and_distinct(void **state)
{
	static const enum pgproto_status sts[] = {
		PGPROTO_INCOMPLETE, PGPROTO_OK, PGPROTO_BAD_LENGTH,
		PGPROTO_BAD_LAYOUT, PGPROTO_BAD_VERSION, PGPROTO_BAD_REQUEST,
		PGPROTO_NO_USER,
	};
	const size_t n = sizeof(sts) / sizeof(sts[0]);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const char *m = pgproto_status_message(sts[i]);
		const char *s = pgproto_status_sqlstate(sts[i]);

		assert_non_null(m);
		assert_true(strlen(m) > 0);
		assert_non_null(s);
		assert_int_equal(strlen(s), 5);
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(m, pgproto_status_message(sts[j]));
	}
	/* The wording a PostgreSQL user would search for. */
	assert_non_null(strstr(pgproto_status_message(PGPROTO_BAD_LENGTH),
	    "invalid length of startup packet"));
	assert_non_null(strstr(pgproto_status_message(PGPROTO_NO_USER),
	    "no PostgreSQL user name specified in startup packet"));
}

/* ------------------------------------------------------------------ */
/* ErrorResponse                                                        */
/* ------------------------------------------------------------------ */

struct parsed_error {
	int	nfields;
	char	types[8];
	char	values[8][2048];
};

/* Parse an ErrorResponse back, failing the test on any framing error. */
static void
parse_error_response(const uint8_t *buf, size_t len, struct parsed_error *pe)
{
	size_t	off = 5;

	memset(pe, 0, sizeof(*pe));
	assert_true(len >= 6);
	assert_int_equal(buf[0], 'E');
	assert_int_equal(pgproto_get32(buf + 1), len - 1);
	assert_int_equal(buf[len - 1], '\0');
	while (buf[off] != '\0') {
		const uint8_t	*nul;
		size_t		 vlen;

		assert_true(pe->nfields < 8);
		assert_true(off < len - 1);
		nul = memchr(buf + off + 1, '\0', len - off - 1);
		assert_non_null(nul);
		vlen = (size_t)(nul - (buf + off + 1));
		assert_true(vlen < sizeof(pe->values[0]));
		pe->types[pe->nfields] = (char)buf[off];
		memcpy(pe->values[pe->nfields], buf + off + 1, vlen);
		pe->nfields++;
		off += 1 + vlen + 1;
		assert_true(off < len);
	}
	/* The terminator is the last byte: nothing after it. */
	assert_int_equal(off, len - 1);
}

static void
test_build_error_fields_s_v_c_m_in_order(void **state)
{
	uint8_t			buf[PGPROTO_ERROR_MAX];
	struct parsed_error	pe;
	size_t			n;

	(void)state;
	n = pgproto_build_error(buf, sizeof(buf), "28000",
	    "no encryption", NULL);
	assert_true(n <= sizeof(buf));
	parse_error_response(buf, n, &pe);
	assert_int_equal(pe.nfields, 4);
	assert_memory_equal(pe.types, "SVCM", 4);
	assert_string_equal(pe.values[0], "FATAL");
	assert_string_equal(pe.values[1], "FATAL");
	assert_string_equal(pe.values[2], "28000");
	assert_string_equal(pe.values[3], "no encryption");
	/* 5 + S(7) + V(7) + C(7) + M(15) + 1 */
	assert_int_equal(n, 5 + 7 + 7 + 7 + 15 + 1);
}

static void
test_build_error_with_detail_appends_d_field(void **state)
{
	uint8_t			buf[PGPROTO_ERROR_MAX];
	struct parsed_error	pe;
	size_t			n;

	(void)state;
	n = pgproto_build_error(buf, sizeof(buf), "08P01", "bad packet",
	    "length word was 3");
	parse_error_response(buf, n, &pe);
	assert_int_equal(pe.nfields, 5);
	assert_memory_equal(pe.types, "SVCMD", 5);
	assert_string_equal(pe.values[3], "bad packet");
	assert_string_equal(pe.values[4], "length word was 3");
}

static void
test_build_error_empty_message_still_well_formed(void **state)
{
	uint8_t			buf[PGPROTO_ERROR_MAX];
	struct parsed_error	pe;
	size_t			n;

	(void)state;
	n = pgproto_build_error(buf, sizeof(buf), "08P01", "", "");
	parse_error_response(buf, n, &pe);
	assert_int_equal(pe.nfields, 5);
	assert_string_equal(pe.values[3], "");
	assert_string_equal(pe.values[4], "");
}

static void
test_build_error_small_cap_returns_needed_length_and_writes_nothing_past_cap(
    void **state)
{
	uint8_t		ref[PGPROTO_ERROR_MAX];
	size_t		need;

	(void)state;
	need = pgproto_build_error(ref, sizeof(ref), "28000",
	    "SSL required", "a detail");
	assert_true(need > 0 && need <= sizeof(ref));

	for (size_t cap = 0; cap <= need; cap++) {
		/* Guard bytes after cap; a heap block of exactly cap for ASan. */
		uint8_t	 guarded[PGPROTO_ERROR_MAX + 32];
		uint8_t	*exact = malloc(cap ? cap : 1);
		size_t	 got;

		assert_non_null(exact);
		memset(guarded, 0xA5, sizeof(guarded));
		got = pgproto_build_error(guarded, cap, "28000",
		    "SSL required", "a detail");
		if (got != need)
			fail_msg("cap %zu: returned %zu, expected %zu", cap,
			    got, need);
		for (size_t i = cap; i < sizeof(guarded); i++)
			if (guarded[i] != 0xA5)
				fail_msg("cap %zu: byte %zu written past cap",
				    cap, i);
		got = pgproto_build_error(exact, cap, "28000",
		    "SSL required", "a detail");
		assert_int_equal(got, need);
		if (cap == need)
			assert_memory_equal(exact, ref, need);
		free(exact);
	}
}

static void
test_build_error_truncates_5000_byte_fields_to_1024(void **state)
{
	uint8_t			buf[PGPROTO_ERROR_MAX];
	struct parsed_error	pe;
	char			*big = malloc(5001);
	char			*big2 = malloc(5001);
	size_t			n;

	(void)state;
	assert_non_null(big);
	assert_non_null(big2);
	memset(big, 'm', 5000);
	big[5000] = '\0';
	memset(big2, 'd', 5000);
	big2[5000] = '\0';

	n = pgproto_build_error(buf, sizeof(buf), "08P01", big, NULL);
	assert_true(n <= PGPROTO_ERROR_MAX);
	parse_error_response(buf, n, &pe);
	assert_int_equal(strlen(pe.values[3]), 1024);
	assert_memory_equal(pe.values[3], big, 1024);

	/* Both long: still fits the documented maximum. */
	n = pgproto_build_error(buf, sizeof(buf), "08P01", big, big2);
	assert_true(n <= PGPROTO_ERROR_MAX);
	parse_error_response(buf, n, &pe);
	assert_int_equal(pe.nfields, 5);
	assert_int_equal(strlen(pe.values[3]), 1024);
	assert_int_equal(strlen(pe.values[4]), 1024);
	assert_memory_equal(pe.values[4], big2, 1024);
	free(big);
	free(big2);
}

static void
test_build_error_field_of_exactly_1024_bytes_is_kept_whole(void **state)
{
	uint8_t			buf[PGPROTO_ERROR_MAX];
	struct parsed_error	pe;
	char			msg[1025];
	size_t			n;

	(void)state;
	memset(msg, 'x', 1024);
	msg[1023] = 'Z';
	msg[1024] = '\0';
	n = pgproto_build_error(buf, sizeof(buf), "08P01", msg, NULL);
	parse_error_response(buf, n, &pe);
	assert_string_equal(pe.values[3], msg);
}

/* ------------------------------------------------------------------ */
/* Hostile input                                                        */
/* ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t
rng_below(uint32_t n)
{
	return (uint32_t)(rng_next() % n);
}

/* Everything the header promises, whatever the input. */
static void
check_contract(const uint8_t *buf, size_t len, const char *what, long iter)
{
	uint8_t			*copy = malloc(len ? len : 1);
	struct pgproto_packet	 pkt;
	enum pgproto_status	 st;

	assert_non_null(copy);
	if (len)
		memcpy(copy, buf, len);
	memset(&pkt, 0xA5, sizeof(pkt));
	st = pgproto_parse_startup(copy, len, &pkt);
	free(copy);

	switch (st) {
	case PGPROTO_INCOMPLETE:
		if (len < PGPROTO_HEADER_LEN ? pkt.length != 0 :
		    (pkt.length <= len || pkt.length < 8 ||
		    pkt.length > PGPROTO_MAX_PACKET))
			fail_msg("%s #%ld: INCOMPLETE with length %u for %zu "
			    "bytes", what, iter, (unsigned)pkt.length, len);
		break;
	case PGPROTO_OK:
		if (pkt.length > len || pkt.length < 8 ||
		    pkt.length > PGPROTO_MAX_PACKET)
			fail_msg("%s #%ld: OK with length %u for %zu bytes",
			    what, iter, (unsigned)pkt.length, len);
		if (memchr(pkt.user, '\0', sizeof(pkt.user)) == NULL ||
		    memchr(pkt.database, '\0', sizeof(pkt.database)) == NULL)
			fail_msg("%s #%ld: user/database not NUL-terminated",
			    what, iter);
		switch (pkt.kind) {
		case PGPROTO_STARTUP:
			if (pkt.user[0] == '\0' || pkt.database[0] == '\0')
				fail_msg("%s #%ld: OK StartupMessage with empty "
				    "user or database", what, iter);
			break;
		case PGPROTO_SSL_REQUEST:
		case PGPROTO_GSSENC_REQUEST:
			if (pkt.length != 8)
				fail_msg("%s #%ld: request of length %u", what,
				    iter, (unsigned)pkt.length);
			break;
		case PGPROTO_CANCEL_REQUEST:
			if (pkt.length < PGPROTO_CANCEL_MIN_LEN ||
			    pkt.length > PGPROTO_CANCEL_MAX_LEN)
				fail_msg("%s #%ld: cancel of length %u", what,
				    iter, (unsigned)pkt.length);
			break;
		default:
			fail_msg("%s #%ld: OK with kind %d", what, iter,
			    (int)pkt.kind);
		}
		break;
	case PGPROTO_BAD_LENGTH:
	case PGPROTO_BAD_LAYOUT:
	case PGPROTO_BAD_VERSION:
	case PGPROTO_BAD_REQUEST:
	case PGPROTO_NO_USER:
		break;
	default:
		fail_msg("%s #%ld: status %d is not a pgproto_status", what,
		    iter, (int)st);
	}
}

static void
test_random_buffers_never_break_the_parser_contract(void **state)
{
	static const uint32_t codes[] = {
		PROTO_3_0, PROTO_3_2, PROTO_2_0, PGPROTO_SSL_REQUEST_CODE,
		PGPROTO_GSSENC_REQUEST_CODE, PGPROTO_CANCEL_REQUEST_CODE,
	};
	static const char *const words[] = {
		"user", "database", "", "x", "options", "user\0", "database\0",
	};
	uint8_t	*buf = malloc(PGPROTO_MAX_PACKET + 64);

	(void)state;
	assert_non_null(buf);
	rng_state = 0x5eed0001u;
	for (long i = 0; i < 100000; i++) {
		size_t	len;

		/* Mostly short buffers, sometimes up to past the maximum. */
		len = rng_below(8) == 0 ? rng_below(PGPROTO_MAX_PACKET + 64) :
		    rng_below(300);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rng_next();
		if (len >= 8 && rng_below(2) == 0) {
			/* Make it look plausible: length and a known code. */
			uint32_t plen = rng_below(4) == 0 ? (uint32_t)rng_next() :
			    (uint32_t)len - rng_below(3);

			pgproto_put32(buf, plen);
			pgproto_put32(buf + 4, codes[rng_below(6)]);
			/* Sprinkle names and NULs into the parameters. */
			for (size_t k = 8; k < len; k++) {
				uint32_t r = rng_below(8);

				if (r < 3)
					buf[k] = '\0';
				else if (r == 3) {
					const char *w = words[rng_below(7)];
					size_t wl = strlen(w) + 1;

					if (k + wl <= len) {
						memcpy(buf + k, w, wl);
						k += wl - 1;
					}
				}
			}
		}
		check_contract(buf, len, "random", i);
	}
	free(buf);
}

static void
test_mutated_valid_packets_never_break_the_parser_contract(void **state)
{
	struct pkt_builder	*b = malloc(sizeof(*b));
	uint8_t			*m = malloc(PGPROTO_MAX_PACKET + 64);

	(void)state;
	assert_non_null(b);
	assert_non_null(m);
	rng_state = 0x5eed0002u;
	for (long i = 0; i < 100000; i++) {
		size_t	len;
		int	nmut;

		switch (rng_below(4)) {
		case 0:
			build_valid_startup(b, rng_below(2) ? PROTO_3_0 : PROTO_3_2);
			break;
		case 1:
			build_cancel(b, (uint32_t)rng_next(), rng_below(260));
			break;
		case 2:
			pb_start(b, rng_below(2) ? PGPROTO_SSL_REQUEST_CODE :
			    PGPROTO_GSSENC_REQUEST_CODE);
			pb_finish(b);
			break;
		default:
			pb_start(b, PROTO_3_0);
			pb_param(b, "user", "mallory");
			pb_param(b, "application_name", "fuzz");
			pb_param(b, "database", "d");
			pb_nul(b);
			pb_finish(b);
			break;
		}
		len = b->len;
		memcpy(m, b->buf, len);
		nmut = 1 + (int)rng_below(4);
		for (int k = 0; k < nmut; k++) {
			switch (rng_below(5)) {
			case 0:		/* flip a byte */
				if (len > 0)
					m[rng_below((uint32_t)len)] ^=
					    (uint8_t)(1u << rng_below(8));
				break;
			case 1:		/* random byte */
				if (len > 0)
					m[rng_below((uint32_t)len)] =
					    (uint8_t)rng_next();
				break;
			case 2:		/* truncate */
				len = rng_below((uint32_t)len + 1);
				break;
			case 3:		/* append garbage */
				for (uint32_t a = rng_below(16);
				    a > 0 && len < PGPROTO_MAX_PACKET + 64; a--)
					m[len++] = (uint8_t)rng_next();
				break;
			default:	/* zero a byte: a NUL in a name */
				if (len > 8)
					m[8 + rng_below((uint32_t)len - 8)] = 0;
				break;
			}
		}
		check_contract(m, len, "mutation", i);
	}
	free(b);
	free(m);
}

/*
 * A TLS ClientHello (PostgreSQL 17 direct SSL) read as a startup packet:
 * 0x16 0x03 0x01 is a length far above the limit, so it is refused at once
 * and never waited for, which is what makes the first-byte test safe.
 */
static void
test_tls_client_hello_is_rejected_as_bad_length(void **state)
{
	static const uint8_t	hello[] = { PGPROTO_TLS_HANDSHAKE_BYTE, 0x03,
	    0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
	struct pgproto_packet	pkt;

	(void)state;
	assert_int_equal(pgproto_parse_startup(hello, 4, &pkt),
	    PGPROTO_BAD_LENGTH);
	assert_int_equal(pgproto_parse_startup(hello, sizeof(hello), &pkt),
	    PGPROTO_BAD_LENGTH);
}

/* backend_sslmode=allow keeps the backend's plaintext refusal for the log. */
static void
test_error_field_is_found_in_whole_and_cut_responses(void **state)
{
	uint8_t	buf[PGPROTO_ERROR_MAX];
	char	out[64];
	size_t	n = pgproto_build_error(buf, sizeof(buf), "28000",
		    "no pg_hba.conf entry", NULL);

	(void)state;
	assert_int_equal(pgproto_error_field(buf, n, 'M', out, sizeof(out)), 0);
	assert_string_equal(out, "no pg_hba.conf entry");
	assert_int_equal(pgproto_error_field(buf, n, 'C', out, sizeof(out)), 0);
	assert_string_equal(out, "28000");
	assert_int_equal(pgproto_error_field(buf, n, 'D', out, sizeof(out)),
	    -1);
	/* Cut inside the message: not there yet, and nothing read past. */
	assert_int_equal(pgproto_error_field(buf, n - 8, 'M', out,
	    sizeof(out)), -1);
	/* A too-small output buffer truncates. */
	assert_int_equal(pgproto_error_field(buf, n, 'M', out, 4), 0);
	assert_string_equal(out, "no ");
	/* Not an ErrorResponse. */
	buf[0] = 'R';
	assert_int_equal(pgproto_error_field(buf, n, 'M', out, sizeof(out)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup_v3_0_extracts_user_and_database),
		cmocka_unit_test(test_startup_v3_2_is_accepted),
		cmocka_unit_test(test_database_defaults_to_user_when_absent),
		cmocka_unit_test(test_database_defaults_to_user_when_empty),
		cmocka_unit_test(test_database_before_user_is_still_extracted),
		cmocka_unit_test(test_long_names_are_truncated_to_name_max_minus_one),
		cmocka_unit_test(test_name_of_name_max_minus_one_bytes_is_kept_whole),
		cmocka_unit_test(test_extra_parameters_are_ignored),
		cmocka_unit_test(test_parameter_names_match_user_and_database_exactly),
		cmocka_unit_test(test_ssl_request_is_recognised),
		cmocka_unit_test(test_gssenc_request_is_recognised),
		cmocka_unit_test(test_request_codes_are_1234_5678_to_5680),
		cmocka_unit_test(test_cancel_request_16_bytes_extracts_pid),
		cmocka_unit_test(test_cancel_request_v3_2_with_32_byte_key_is_accepted),
		cmocka_unit_test(test_cancel_request_with_256_byte_key_is_accepted),
		cmocka_unit_test(test_cancel_request_with_257_byte_key_is_rejected),
		cmocka_unit_test(test_cancel_request_shorter_than_16_bytes_is_rejected),
		cmocka_unit_test(test_ssl_request_with_length_12_is_rejected),
		cmocka_unit_test(test_unknown_1234_request_code_is_rejected),
		cmocka_unit_test(test_every_prefix_of_a_valid_packet_is_incomplete),
		cmocka_unit_test(test_bytes_after_the_packet_are_not_part_of_it),
		cmocka_unit_test(test_length_below_8_is_rejected_with_only_the_length_word),
		cmocka_unit_test(test_length_above_10004_is_rejected_before_payload_arrives),
		cmocka_unit_test(test_length_10004_is_waited_for_then_accepted),
		cmocka_unit_test(test_startup_of_length_8_has_no_terminator),
		cmocka_unit_test(test_protocol_2_and_4_are_rejected_as_bad_version),
		cmocka_unit_test(test_missing_final_terminator_is_bad_layout),
		cmocka_unit_test(test_terminator_must_be_the_last_byte),
		cmocka_unit_test(test_name_without_value_is_bad_layout),
		cmocka_unit_test(test_value_without_nul_is_bad_layout),
		cmocka_unit_test(test_startup_without_user_is_no_user),
		cmocka_unit_test(test_empty_user_is_no_user),
		cmocka_unit_test(test_status_sqlstates_match_postgresql),
		cmocka_unit_test(test_status_messages_are_non_empty_and_distinct),
		cmocka_unit_test(test_build_error_fields_s_v_c_m_in_order),
		cmocka_unit_test(test_build_error_with_detail_appends_d_field),
		cmocka_unit_test(test_build_error_empty_message_still_well_formed),
		cmocka_unit_test(test_build_error_small_cap_returns_needed_length_and_writes_nothing_past_cap),
		cmocka_unit_test(test_build_error_truncates_5000_byte_fields_to_1024),
		cmocka_unit_test(test_build_error_field_of_exactly_1024_bytes_is_kept_whole),
		cmocka_unit_test(test_random_buffers_never_break_the_parser_contract),
		cmocka_unit_test(test_mutated_valid_packets_never_break_the_parser_contract),
		cmocka_unit_test(test_tls_client_hello_is_rejected_as_bad_length),
		cmocka_unit_test(test_error_field_is_found_in_whole_and_cut_responses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
