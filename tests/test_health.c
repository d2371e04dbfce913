/*
 * test_health: the /healthz and /readyz verdicts from made-up heartbeats,
 * flags and dates, without a socket or a thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../src/health.h"

#define NOW	1000000		/* ms on the monotonic clock */

static void
test_every_worker_beating_is_healthy(void **state)
{
	int64_t	beats[3] = { NOW - 10, NOW - HEALTH_BEAT_MS, NOW };
	int64_t	age = -1;

	(void)state;
	assert_int_equal(health_stuck_worker(beats, 3, NOW, HEALTH_STALE_MS,
	    &age), -1);
	assert_int_equal(age, -1);
	/* Exactly at the limit is still alive. */
	beats[1] = NOW - HEALTH_STALE_MS;
	assert_int_equal(health_stuck_worker(beats, 3, NOW, HEALTH_STALE_MS,
	    NULL), -1);
}

static void
test_a_silent_worker_is_named_with_its_silence(void **state)
{
	int64_t	beats[4] = { NOW, NOW - 200, NOW - HEALTH_STALE_MS - 1, NOW };
	int64_t	age = 0;

	(void)state;
	assert_int_equal(health_stuck_worker(beats, 4, NOW, HEALTH_STALE_MS,
	    &age), 2);
	assert_int_equal(age, HEALTH_STALE_MS + 1);
	/* The first stuck one is named when several are. */
	beats[1] = NOW - 60000;
	assert_int_equal(health_stuck_worker(beats, 4, NOW, HEALTH_STALE_MS,
	    &age), 1);
	assert_int_equal(age, 60000);
}

static void
test_a_drained_worker_is_not_stuck(void **state)
{
	int64_t	beats[2] = { HEALTH_BEAT_STOPPED, NOW - 100 };

	(void)state;
	assert_int_equal(health_stuck_worker(beats, 2, NOW, HEALTH_STALE_MS,
	    NULL), -1);
	beats[1] = HEALTH_BEAT_STOPPED;
	assert_int_equal(health_stuck_worker(beats, 2, NOW, HEALTH_STALE_MS,
	    NULL), -1);
	assert_int_equal(health_stuck_worker(beats, 0, NOW, HEALTH_STALE_MS,
	    NULL), -1);
}

static void
test_a_beat_after_the_clock_was_read_is_no_silence(void **state)
{
	int64_t	beats[1] = { NOW + 5 };

	(void)state;
	assert_int_equal(health_stuck_worker(beats, 1, NOW, HEALTH_STALE_MS,
	    NULL), -1);
}

static void
test_health_clock_is_monotonic_and_never_stopped(void **state)
{
	int64_t	a = health_clock_ms(), b = health_clock_ms();

	(void)state;
	assert_true(a != HEALTH_BEAT_STOPPED);
	assert_true(b >= a);
}

static struct health_ready_facts
ready_facts(void)
{
	struct health_ready_facts	f;

	memset(&f, 0, sizeof(f));
	f.listening = true;
	f.ssl = true;
	f.cert_loaded = true;
	f.now = 1700000000;
	f.cert_not_after = f.now + 86400;
	return f;
}

static void
test_listening_with_a_valid_certificate_is_ready(void **state)
{
	struct health_ready_facts	f = ready_facts();
	char				reason[128];

	(void)state;
	assert_true(health_ready(&f, reason, sizeof(reason)));
	assert_string_equal(reason, "ready");
	/* ssl = off: no certificate needed. */
	f.ssl = false;
	f.cert_loaded = false;
	f.cert_not_after = 0;
	assert_true(health_ready(&f, reason, sizeof(reason)));
}

static void
test_draining_is_not_ready_whatever_else(void **state)
{
	struct health_ready_facts	f = ready_facts();
	char				reason[128];

	(void)state;
	f.draining = true;
	f.listening = false;		/* the sockets closed with the drain */
	f.cert_not_after = f.now - 10;
	assert_false(health_ready(&f, reason, sizeof(reason)));
	assert_string_equal(reason, "draining");
}

static void
test_not_listening_is_not_ready(void **state)
{
	struct health_ready_facts	f = ready_facts();
	char				reason[128];

	(void)state;
	f.listening = false;
	assert_false(health_ready(&f, reason, sizeof(reason)));
	assert_string_equal(reason, "not listening");
}

static void
test_an_expired_certificate_is_not_ready(void **state)
{
	struct health_ready_facts	f = ready_facts();
	char				reason[128];

	(void)state;
	f.cert_not_after = f.now - 86400;
	assert_false(health_ready(&f, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "certificate expired 86400 s ago"));
	/* The second it expires. */
	f.cert_not_after = f.now;
	assert_false(health_ready(&f, reason, sizeof(reason)));
	f.cert_not_after = f.now + 1;
	assert_true(health_ready(&f, reason, sizeof(reason)));
	/* An expired file does not matter with ssl = off. */
	f.ssl = false;
	f.cert_not_after = f.now - 86400;
	assert_true(health_ready(&f, reason, sizeof(reason)));
}

static void
test_ssl_on_without_a_certificate_is_not_ready(void **state)
{
	struct health_ready_facts	f = ready_facts();
	char				reason[128];

	(void)state;
	f.cert_loaded = false;
	assert_false(health_ready(&f, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "no certificate"));
}

static void
test_reason_fits_a_small_buffer(void **state)
{
	struct health_ready_facts	f = ready_facts();
	char				reason[8];

	(void)state;
	f.cert_not_after = f.now - 1;
	assert_false(health_ready(&f, reason, sizeof(reason)));
	assert_int_equal(strlen(reason), sizeof(reason) - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_worker_beating_is_healthy),
		cmocka_unit_test(test_a_silent_worker_is_named_with_its_silence),
		cmocka_unit_test(test_a_drained_worker_is_not_stuck),
		cmocka_unit_test(
		    test_a_beat_after_the_clock_was_read_is_no_silence),
		cmocka_unit_test(
		    test_health_clock_is_monotonic_and_never_stopped),
		cmocka_unit_test(
		    test_listening_with_a_valid_certificate_is_ready),
		cmocka_unit_test(test_draining_is_not_ready_whatever_else),
		cmocka_unit_test(test_not_listening_is_not_ready),
		cmocka_unit_test(test_an_expired_certificate_is_not_ready),
		cmocka_unit_test(test_ssl_on_without_a_certificate_is_not_ready),
		cmocka_unit_test(test_reason_fits_a_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
