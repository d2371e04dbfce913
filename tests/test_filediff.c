/*
 * test_filediff: the file watcher's decision (reload, wait or nothing) from
 * fingerprints of the files before and after, without touching a file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../src/filediff.h"

/* A fingerprint standing for content number n (0: none yet). */
static struct filediff_print
content(unsigned char n)
{
	struct filediff_print	p;

	memset(&p, 0, sizeof(p));
	memset(p.hash, n, sizeof(p.hash));
	return p;
}

static struct filediff_print
missing(int err)
{
	struct filediff_print	p;

	memset(&p, 0, sizeof(p));
	p.err = err;
	return p;
}

#define SET(arr)	((struct filediff_set){ (arr), sizeof(arr) / sizeof((arr)[0]) })

static enum filediff_action
decide(const struct filediff_set *applied, const struct filediff_set *tried,
    const struct filediff_set *now, size_t *changed, size_t *n)
{
	return filediff_decide(applied, tried, now, changed, 4, n);
}

static void
test_nothing_changed_does_nothing(void **state)
{
	struct filediff_entry	a[] = {
		{ "gate.conf", content(1) },
		{ "tls.crt", content(2) },
		{ "tls.key", content(3) },
	};
	struct filediff_set	applied = SET(a), now = SET(a);
	size_t			changed[4], n = 99;

	(void)state;
	assert_int_equal(decide(&applied, NULL, &now, changed, &n),
	    FILEDIFF_NONE);
	assert_int_equal(n, 0);
}

static void
test_new_certificate_and_key_reload_naming_both(void **state)
{
	struct filediff_entry	a[] = {
		{ "tls.crt", content(2) }, { "tls.key", content(3) },
		{ "ca.crt", content(4) },
	}, b[] = {
		{ "tls.crt", content(5) }, { "tls.key", content(6) },
		{ "ca.crt", content(4) },
	};
	struct filediff_set	applied = SET(a), now = SET(b);
	size_t			changed[4], n;

	(void)state;
	assert_int_equal(decide(&applied, NULL, &now, changed, &n),
	    FILEDIFF_RELOAD);
	assert_int_equal(n, 2);
	assert_int_equal(changed[0], 0);
	assert_int_equal(changed[1], 1);
}

static void
test_half_written_pair_waits_then_reloads_when_complete(void **state)
{
	struct filediff_entry	a[] = {
		{ "tls.crt", content(2) }, { "tls.key", content(3) },
	}, half[] = {
		{ "tls.crt", content(5) }, { "tls.key", content(3) },
	}, whole[] = {
		{ "tls.crt", content(5) }, { "tls.key", content(6) },
	};
	struct filediff_set	applied = SET(a), h = SET(half), w = SET(whole);
	size_t			changed[4], n;

	(void)state;
	/* First sight of the new certificate: try it (and fail, key old). */
	assert_int_equal(decide(&applied, NULL, &h, changed, &n),
	    FILEDIFF_RELOAD);
	assert_int_equal(n, 1);
	assert_int_equal(changed[0], 0);
	/* The same half pair again: no second attempt, no second log. */
	assert_int_equal(decide(&applied, &h, &h, changed, &n), FILEDIFF_WAIT);
	assert_int_equal(n, 1);
	/* The key arrives: a new attempt. */
	assert_int_equal(decide(&applied, &h, &w, changed, &n),
	    FILEDIFF_RELOAD);
	assert_int_equal(n, 2);
}

static void
test_files_back_as_in_force_after_a_failure_do_nothing(void **state)
{
	struct filediff_entry	a[] = { { "tls.crt", content(2) } },
				bad[] = { { "tls.crt", content(9) } };
	struct filediff_set	applied = SET(a), tried = SET(bad);
	size_t			changed[4], n;

	(void)state;
	assert_int_equal(decide(&applied, &tried, &applied, changed, &n),
	    FILEDIFF_NONE);
}

static void
test_a_file_that_vanishes_or_turns_unreadable_is_a_change(void **state)
{
	struct filediff_entry	a[] = { { "crl.pem", content(7) } },
				gone[] = { { "crl.pem", missing(ENOENT) } },
				denied[] = { { "crl.pem", missing(EACCES) } },
				fifo[] = {
		{ "crl.pem", missing(FILEDIFF_NOT_REGULAR) }
	};
	struct filediff_set	applied = SET(a), g = SET(gone),
				d = SET(denied), f = SET(fifo);
	size_t			changed[4], n;

	(void)state;
	assert_int_equal(decide(&applied, NULL, &g, changed, &n),
	    FILEDIFF_RELOAD);
	/* Still missing: the failure stands, nothing is retried. */
	assert_int_equal(decide(&applied, &g, &g, changed, &n), FILEDIFF_WAIT);
	/* Missing for another reason is another state of the file. */
	assert_int_equal(decide(&applied, &g, &d, changed, &n),
	    FILEDIFF_RELOAD);
	assert_int_equal(decide(&applied, &d, &f, changed, &n),
	    FILEDIFF_RELOAD);
}

static void
test_order_of_the_files_does_not_matter(void **state)
{
	struct filediff_entry	a[] = {
		{ "tls.crt", content(2) }, { "tls.key", content(3) },
	}, b[] = {
		{ "tls.key", content(3) }, { "tls.crt", content(2) },
	};
	struct filediff_set	applied = SET(a), now = SET(b);
	size_t			changed[4], n;

	(void)state;
	assert_true(filediff_same_set(&applied, &now));
	assert_int_equal(decide(&applied, NULL, &now, changed, &n),
	    FILEDIFF_NONE);
}

static void
test_a_path_set_of_another_size_or_name_differs(void **state)
{
	struct filediff_entry	a[] = {
		{ "tls.crt", content(2) }, { "tls.key", content(3) },
	}, fewer[] = { { "tls.crt", content(2) } },
	   renamed[] = { { "tls.crt", content(2) }, { "new.key", content(3) } };
	struct filediff_set	applied = SET(a), f = SET(fewer),
				r = SET(renamed);
	size_t			changed[4], n;

	(void)state;
	assert_false(filediff_same_set(&applied, &f));
	assert_false(filediff_same_set(&applied, &r));
	assert_int_equal(decide(&applied, NULL, &r, changed, &n),
	    FILEDIFF_RELOAD);
	assert_int_equal(n, 1);
	assert_int_equal(changed[0], 1);
}

static void
test_changed_list_is_bounded_but_counts_all(void **state)
{
	struct filediff_entry	a[6], b[6];
	static const char *const names[6] = { "a", "b", "c", "d", "e", "f" };
	struct filediff_set	applied = SET(a), now = SET(b);
	size_t			changed[2] = { 99, 99 }, n;

	(void)state;
	for (int i = 0; i < 6; i++) {
		a[i] = (struct filediff_entry){ names[i], content(1) };
		b[i] = (struct filediff_entry){ names[i], content(2) };
	}
	assert_int_equal(filediff_decide(&applied, NULL, &now, changed, 2, &n),
	    FILEDIFF_RELOAD);
	assert_int_equal(n, 6);
	assert_int_equal(changed[0], 0);
	assert_int_equal(changed[1], 1);
}

static void
test_empty_sets_are_the_same(void **state)
{
	struct filediff_set	none = { NULL, 0 };
	size_t			changed[4], n;

	(void)state;
	assert_int_equal(decide(&none, NULL, &none, changed, &n),
	    FILEDIFF_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_changed_does_nothing),
		cmocka_unit_test(test_new_certificate_and_key_reload_naming_both),
		cmocka_unit_test(test_half_written_pair_waits_then_reloads_when_complete),
		cmocka_unit_test(test_files_back_as_in_force_after_a_failure_do_nothing),
		cmocka_unit_test(test_a_file_that_vanishes_or_turns_unreadable_is_a_change),
		cmocka_unit_test(test_order_of_the_files_does_not_matter),
		cmocka_unit_test(test_a_path_set_of_another_size_or_name_differs),
		cmocka_unit_test(test_changed_list_is_bounded_but_counts_all),
		cmocka_unit_test(test_empty_sets_are_the_same),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
