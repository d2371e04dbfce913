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
		cmocka_unit_test(
		    test_a_length_under_four_loses_the_framing_for_good),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
