/*
 * test_startcap: the startup-phase counts behind max_startup_connections
 * and max_startup_connections_per_host, without a socket.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../src/startcap.h"

static struct startcap_key
v4(const char *addr)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	struct startcap_key	k;

	assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	startcap_key_of(&k, (struct sockaddr *)&sin);
	return k;
}

static struct startcap_key
v6(const char *addr)
{
	struct sockaddr_in6	sin6 = { .sin6_family = AF_INET6 };
	struct startcap_key	k;

	assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
	startcap_key_of(&k, (struct sockaddr *)&sin6);
	return k;
}

static void
test_per_host_cap_refuses_only_that_source(void **state)
{
	struct startcap_key	a = v4("192.0.2.1"), b = v4("192.0.2.2");

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(startcap_enter(&a, 10, 3), STARTCAP_OK);
	assert_int_equal(startcap_enter(&a, 10, 3), STARTCAP_HOST_FULL);
	assert_int_equal(startcap_enter(&b, 10, 3), STARTCAP_OK);
	assert_int_equal(startcap_total(), 4);
	startcap_leave(&a);
	assert_int_equal(startcap_enter(&a, 10, 3), STARTCAP_OK);
	for (int i = 0; i < 3; i++)
		startcap_leave(&a);
	startcap_leave(&b);
	assert_int_equal(startcap_total(), 0);
}

static void
test_total_cap_counts_every_source(void **state)
{
	struct startcap_key	k[5];
	char			addr[32];

	(void)state;
	for (int i = 0; i < 5; i++) {
		snprintf(addr, sizeof(addr), "198.51.100.%d", i + 1);
		k[i] = v4(addr);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(startcap_enter(&k[i], 4, 2), STARTCAP_OK);
	assert_int_equal(startcap_enter(&k[4], 4, 2), STARTCAP_FULL);
	startcap_leave(&k[0]);
	assert_int_equal(startcap_enter(&k[4], 4, 2), STARTCAP_OK);
	for (int i = 1; i < 5; i++)
		startcap_leave(&k[i]);
	assert_int_equal(startcap_total(), 0);
}

static void
test_ipv6_sources_are_counted_by_64(void **state)
{
	struct startcap_key	a = v6("2001:db8:1:2::1"),
				b = v6("2001:db8:1:2:ffff::9"),
				c = v6("2001:db8:1:3::1");
	char			name[64];

	(void)state;
	assert_int_equal(startcap_enter(&a, 10, 1), STARTCAP_OK);
	assert_int_equal(startcap_enter(&b, 10, 1), STARTCAP_HOST_FULL);
	assert_int_equal(startcap_enter(&c, 10, 1), STARTCAP_OK);
	startcap_key_name(&a, name, sizeof(name));
	assert_string_equal(name, "2001:db8:1:2::/64");
	startcap_leave(&a);
	startcap_leave(&c);
	assert_int_equal(startcap_total(), 0);
}

static void
test_top_lists_the_busiest_sources_first(void **state)
{
	struct startcap_source	top[STARTCAP_TOP];
	struct startcap_key	k[8];
	char			addr[32], name[64];
	int			n;

	(void)state;
	/* Source i holds i + 1 connections. */
	for (int i = 0; i < 8; i++) {
		snprintf(addr, sizeof(addr), "203.0.113.%d", i + 1);
		k[i] = v4(addr);
		for (int j = 0; j <= i; j++)
			assert_int_equal(startcap_enter(&k[i], 100, 100),
			    STARTCAP_OK);
	}
	n = startcap_top(top, STARTCAP_TOP);
	assert_int_equal(n, STARTCAP_TOP);
	for (int i = 0; i < n; i++)
		assert_int_equal(top[i].count, 8 - i);
	startcap_key_name(&top[0].key, name, sizeof(name));
	assert_string_equal(name, "203.0.113.8");
	for (int i = 0; i < 8; i++)
		for (int j = 0; j <= i; j++)
			startcap_leave(&k[i]);
	assert_int_equal(startcap_top(top, STARTCAP_TOP), 0);
	assert_int_equal(startcap_total(), 0);
}

static void
test_table_full_of_sources_refuses_a_new_one(void **state)
{
	struct startcap_key	k, extra = v4("10.255.255.255");

	(void)state;
	for (uint32_t i = 0; i < STARTCAP_SOURCES; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };

		sin.sin_addr.s_addr = htonl(0x0a000000u + i);
		startcap_key_of(&k, (struct sockaddr *)&sin);
		assert_int_equal(startcap_enter(&k, 1000000, 1), STARTCAP_OK);
	}
	assert_int_equal(startcap_enter(&extra, 1000000, 1), STARTCAP_FULL);
	for (uint32_t i = 0; i < STARTCAP_SOURCES; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };

		sin.sin_addr.s_addr = htonl(0x0a000000u + i);
		startcap_key_of(&k, (struct sockaddr *)&sin);
		startcap_leave(&k);
	}
	assert_int_equal(startcap_total(), 0);
	assert_int_equal(startcap_enter(&extra, 1000000, 1), STARTCAP_OK);
	startcap_leave(&extra);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_host_cap_refuses_only_that_source),
		cmocka_unit_test(test_total_cap_counts_every_source),
		cmocka_unit_test(test_ipv6_sources_are_counted_by_64),
		cmocka_unit_test(test_top_lists_the_busiest_sources_first),
		cmocka_unit_test(test_table_full_of_sources_refuses_a_new_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
