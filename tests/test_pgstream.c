/*
 * test_pgstream: message boundaries and the ReadyForQuery status, as the
 * relay follows them, however the stream is cut into reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../src/pgstream.h"

static size_t
put_msg(uint8_t *p, char type, const char *body, size_t blen)
{
	uint32_t	len = (uint32_t)blen + 4;

	p[0] = (uint8_t)type;
	p[1] = (uint8_t)(len >> 24);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
	memcpy(p + 5, body, blen);
	return 5 + blen;
}

/* A backend's answer to a simple query: T, D, C, then Z 'I'. */
static size_t
put_answer(uint8_t *p, size_t *ends, char status)
{
	size_t	n = 0;

	n += put_msg(p + n, 'T', "\0\1col\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
	    21);
	ends[0] = n;
	n += put_msg(p + n, 'D', "\0\1\0\0\0\1x", 7);
	ends[1] = n;
	n += put_msg(p + n, 'C', "SELECT 1", 9);
	ends[2] = n;
	n += put_msg(p + n, 'Z', &status, 1);
	ends[3] = n;
	return n;
}

static void
test_boundaries_are_found_one_byte_at_a_time(void **state)
{
	uint8_t		 buf[128];
	size_t		 ends[4], n = put_answer(buf, ends, 'I'), e = 0;
	struct pgstream	 st = { 0 };

	(void)state;
	assert_true(pgstream_at_boundary(&st));
	for (size_t i = 0; i < n; i++) {
		pgstream_scan(&st, buf + i, 1);
		if (i + 1 == ends[e]) {
			assert_true(pgstream_at_boundary(&st));
			e++;
		} else
			assert_false(pgstream_at_boundary(&st));
		/* Idle only once the ReadyForQuery is whole. */
		assert_int_equal(pgstream_idle(&st), i + 1 == n);
	}
	assert_int_equal(e, 4);
}

static void
test_every_cut_into_two_reads_ends_idle(void **state)
{
	uint8_t		 buf[128];
	size_t		 ends[4], n = put_answer(buf, ends, 'I');

	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		struct pgstream	st = { 0 };

		pgstream_scan(&st, buf, cut);
		pgstream_scan(&st, buf + cut, n - cut);
		assert_true(pgstream_idle(&st));
	}
}

static void
test_ready_for_query_in_a_transaction_is_not_idle(void **state)
{
	uint8_t		 buf[128];
	size_t		 ends[4], n = put_answer(buf, ends, 'T');
	struct pgstream	 st = { 0 };

	(void)state;
	pgstream_scan(&st, buf, n);
	assert_true(pgstream_at_boundary(&st));
	assert_false(pgstream_idle(&st));
	assert_int_equal(st.status, 'T');
}

static void
test_a_message_after_ready_for_query_is_not_idle(void **state)
{
	uint8_t		 buf[160];
	size_t		 ends[4], n = put_answer(buf, ends, 'I');
	struct pgstream	 st = { 0 };

	(void)state;
	n += put_msg(buf + n, 'N', "SNOTICE\0", 8);	/* NoticeResponse */
	pgstream_scan(&st, buf, n);
	assert_true(pgstream_at_boundary(&st));
	assert_false(pgstream_idle(&st));
}

/* Bodies are skipped by count: a 1 GiB DataRow needs no bytes looked at. */
static void
test_a_huge_body_is_counted_not_read(void **state)
{
	uint8_t		 hdr[5] = { 'd', 0x40, 0, 0, 4 };
	uint8_t		 chunk[4096];
	struct pgstream	 st = { 0 };

	(void)state;
	memset(chunk, 'Z', sizeof(chunk));	/* no 'Z' is taken for one */
	pgstream_scan(&st, hdr, sizeof(hdr));
	assert_int_equal(st.left, 0x40000000u);
	for (int i = 0; i < 1000; i++)
		pgstream_scan(&st, chunk, sizeof(chunk));
	assert_false(pgstream_at_boundary(&st));
	assert_int_equal(st.left, 0x40000000u - 1000u * sizeof(chunk));
	assert_int_equal(st.status, 0);
}

static void
test_a_length_under_four_loses_the_framing_for_good(void **state)
{
	uint8_t		 bad[5] = { 'Q', 0, 0, 0, 3 };
	uint8_t		 buf[64];
	size_t		 ends[4];
	struct pgstream	 st = { 0 };

	(void)state;
	pgstream_scan(&st, bad, sizeof(bad));
	assert_true(st.lost);
	assert_false(pgstream_at_boundary(&st));
	pgstream_scan(&st, buf, put_answer(buf, ends, 'I'));
	assert_false(pgstream_at_boundary(&st));
	assert_false(pgstream_idle(&st));
}

/*
 * A pipelining client has sent two queries; after the first answer the
 * backend is idle but still owes one: not yet a point to end the session.
 */
static void
test_a_pipelined_query_is_owed_an_answer(void **state)
{
	struct pgstream	cl, sv;
	uint8_t		buf[256];
	size_t		n = 0, ends[4];

	(void)state;
	memset(&cl, 0, sizeof(cl));
	memset(&sv, 0, sizeof(sv));
	/* The login's ReadyForQuery answers no query. */
	pgstream_scan(&sv, (const uint8_t *)"Z\0\0\0\5I", 6);
	assert_true(pgstream_answered(&cl, &sv));
	n += put_msg(buf + n, 'Q', "SELECT 1", 9);
	n += put_msg(buf + n, 'P', "\0SELECT 1\0\0\0", 12);
	n += put_msg(buf + n, 'S', "", 0);
	pgstream_scan(&cl, buf, n);
	assert_int_equal(cl.turns, 2);
	n = put_answer(buf, ends, 'I');
	pgstream_scan(&sv, buf, n);
	assert_true(pgstream_idle(&sv));
	assert_false(pgstream_answered(&cl, &sv));
	/* ParameterStatus is 'S' too: on the server's stream, no answer. */
	n = put_msg(buf, 'S', "a\0b", 4);
	pgstream_scan(&sv, buf, n);
	assert_int_equal(sv.readies, 2);
	assert_false(pgstream_answered(&cl, &sv));
	n = put_answer(buf, ends, 'I');
	pgstream_scan(&sv, buf, n);
	assert_true(pgstream_answered(&cl, &sv));
}

/* A cut at every position finds the end of the message in progress. */
static void
test_the_rest_of_a_message_is_measured_from_any_cut(void **state)
{
	uint8_t		 buf[128];
	size_t		 ends[4], n = put_answer(buf, ends, 'T'), e;

	(void)state;
	for (size_t cut = 0; cut < n; cut++) {
		struct pgstream	st = { 0 };

		pgstream_scan(&st, buf, cut);
		for (e = 0; ends[e] <= cut && e < 3; e++)
			;
		if (pgstream_at_boundary(&st))
			assert_int_equal(pgstream_until_boundary(&st,
			    buf + cut, n - cut), 0);
		else {
			assert_int_equal(pgstream_until_boundary(&st,
			    buf + cut, n - cut), ends[e] - cut);
			/* Not all there yet: all of it is the message's. */
			assert_int_equal(pgstream_until_boundary(&st,
			    buf + cut, ends[e] - cut - 1), ends[e] - cut - 1);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundaries_are_found_one_byte_at_a_time),
		cmocka_unit_test(test_every_cut_into_two_reads_ends_idle),
		cmocka_unit_test(
		    test_ready_for_query_in_a_transaction_is_not_idle),
		cmocka_unit_test(test_a_message_after_ready_for_query_is_not_idle),
		cmocka_unit_test(test_a_huge_body_is_counted_not_read),
		cmocka_unit_test(test_a_pipelined_query_is_owed_an_answer),
		cmocka_unit_test(
		    test_the_rest_of_a_message_is_measured_from_any_cut),
		cmocka_unit_test(
		    test_a_length_under_four_loses_the_framing_for_good),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
