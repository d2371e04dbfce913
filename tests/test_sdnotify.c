/*
 * test_sdnotify: the parts of systemd's protocol that are decisions, not
 * I/O: how a NOTIFY_SOCKET value becomes an address (a path, or '@' for the
 * abstract namespace, whose name is the bytes after a leading NUL and has
 * no terminator), and which LISTEN_PID / LISTEN_FDS values hand us
 * sockets.  Then one round trip through a real datagram socket, to pin the
 * exact bytes systemd receives.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdnotify.h"

static void
test_path_is_nul_terminated_and_counted(void **state)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	char			err[256];

	(void)state;
	assert_int_equal(sdnotify_addr("/run/systemd/notify", &sun, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(sun.sun_family, AF_UNIX);
	assert_string_equal(sun.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) +
	    strlen("/run/systemd/notify") + 1);
}

static void
test_abstract_name_starts_with_nul_and_has_no_terminator(void **state)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	char			err[256];

	(void)state;
	assert_int_equal(sdnotify_addr("@gate/notify", &sun, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(sun.sun_path[0], '\0');
	assert_memory_equal(sun.sun_path + 1, "gate/notify", 11);
	/* The length, not a NUL, ends an abstract name: exactly 12 bytes. */
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 12);
}

static void
test_bad_values_are_refused_with_a_reason(void **state)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	char			err[256], longname[200];

	(void)state;
	assert_int_equal(sdnotify_addr("relative/path", &sun, &len, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "starting with '/'"));
	assert_int_equal(sdnotify_addr("@", &sun, &len, err, sizeof(err)), -1);
	assert_int_equal(sdnotify_addr("", &sun, &len, err, sizeof(err)), -1);

	/* sun_path is 108 bytes: a path needs room for its NUL, '@' not. */
	memset(longname, 'x', sizeof(longname));
	longname[0] = '/';
	longname[sizeof(sun.sun_path)] = '\0';
	assert_int_equal(sdnotify_addr(longname, &sun, &len, err,
	    sizeof(err)), -1);
	longname[sizeof(sun.sun_path) - 1] = '\0';
	assert_int_equal(sdnotify_addr(longname, &sun, &len, err,
	    sizeof(err)), 0);
	memset(longname, 'x', sizeof(longname));
	longname[0] = '@';
	longname[sizeof(sun.sun_path)] = '\0';
	assert_int_equal(sdnotify_addr(longname, &sun, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(len, sizeof(struct sockaddr_un));
	longname[sizeof(sun.sun_path)] = 'x';
	longname[sizeof(sun.sun_path) + 1] = '\0';
	assert_int_equal(sdnotify_addr(longname, &sun, &len, err,
	    sizeof(err)), -1);
}

static void
test_listen_variables(void **state)
{
	char	err[256];

	(void)state;
	/* Unset, or for another process: not ours, and no error. */
	assert_int_equal(sdnotify_parse_listen(NULL, NULL, 42, 32, err,
	    sizeof(err)), 0);
	assert_int_equal(sdnotify_parse_listen("42", NULL, 42, 32, err,
	    sizeof(err)), 0);
	assert_int_equal(sdnotify_parse_listen("43", "2", 42, 32, err,
	    sizeof(err)), 0);
	/* Another process's LISTEN_FDS is not ours to judge. */
	assert_int_equal(sdnotify_parse_listen("43", "junk", 42, 32, err,
	    sizeof(err)), 0);

	assert_int_equal(sdnotify_parse_listen("42", "2", 42, 32, err,
	    sizeof(err)), 2);
	assert_int_equal(sdnotify_parse_listen("42", "0", 42, 32, err,
	    sizeof(err)), 0);
	assert_int_equal(sdnotify_parse_listen("42", "32", 42, 32, err,
	    sizeof(err)), 32);

	assert_int_equal(sdnotify_parse_listen("42", "33", 42, 32, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "at most 32"));
	assert_int_equal(sdnotify_parse_listen("42", "-1", 42, 32, err,
	    sizeof(err)), -1);
	assert_int_equal(sdnotify_parse_listen("42", "2 ", 42, 32, err,
	    sizeof(err)), -1);
	assert_int_equal(sdnotify_parse_listen("42", "", 42, 32, err,
	    sizeof(err)), -1);
	assert_int_equal(sdnotify_parse_listen("42", "99999999999999999999",
	    42, 32, err, sizeof(err)), -1);
	assert_int_equal(sdnotify_parse_listen("x42", "1", 42, 32, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "LISTEN_PID"));
}

/* What systemd's end of the socket reads: the exact datagrams. */
static void
test_datagrams_on_the_wire(void **state)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	char			name[64], err[256], buf[2048], big[3000];
	ssize_t			n;
	int			fd;

	(void)state;
	snprintf(name, sizeof(name), "@pgsslgate-test-sdnotify-%ld",
	    (long)getpid());
	assert_int_equal(sdnotify_addr(name, &sun, &len, err, sizeof(err)), 0);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	setenv("NOTIFY_SOCKET", name, 1);
	sdnotify_init();

	sdnotify_state("READY=1", "ready: %d workers", 4);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=ready: 4 workers\n");

	/* A newline in a status (an error text) must not add a variable. */
	sdnotify_state("READY=1", "reload failed: %s", "line 1\nWATCHDOG=1");
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	assert_string_equal(buf,
	    "READY=1\nSTATUS=reload failed: line 1 WATCHDOG=1\n");

	sdnotify_reloading("reloading the configuration");
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	assert_true(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	assert_true(strtoull(buf + 27, NULL, 10) > 0);
	assert_non_null(strstr(buf,
	    "\nSTATUS=reloading the configuration\n"));

	/* A status too long for one datagram is cut, never split. */
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 5; i++)
		sdnotify_state("STOPPING=1", "%s", big);
	for (int i = 0; i < 5; i++) {
		n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		assert_true(n > 1000 && n < 1024);
		assert_true(strncmp(buf, "STOPPING=1\nSTATUS=yyy", 21) == 0);
	}
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_is_nul_terminated_and_counted),
		cmocka_unit_test(test_abstract_name_starts_with_nul_and_has_no_terminator),
		cmocka_unit_test(test_bad_values_are_refused_with_a_reason),
		cmocka_unit_test(test_listen_variables),
		cmocka_unit_test(test_datagrams_on_the_wire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
