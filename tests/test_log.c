/*
 * test_log: what a log line holds when a message carries text a client or
 * backend chose: no such text can start a line, or reach a terminal as a
 * control sequence; everything else is written as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "../src/log.h"

#define FORGED	"2030-01-01 00:00:00.000 UTC [1] LOG:  FORGED-LINE"

/*
 * log.c's syslog(3), openlog(3) and closelog(3), caught here: the
 * executable's definitions come before libc's, so the message log_msg()
 * hands to syslog can be read back.
 */
static char	syslogged[8192];
static int	syslog_calls;

void
openlog(const char *ident, int option, int facility)
{
	(void)ident;
	(void)option;
	(void)facility;
}

void
closelog(void)
{
}

static void
catch_syslog(const char *fmt, va_list ap)
{
	syslog_calls++;
	vsnprintf(syslogged, sizeof(syslogged), fmt, ap);
}

void
syslog(int priority, const char *fmt, ...)
{
	va_list	ap;

	(void)priority;
	va_start(ap, fmt);
	catch_syslog(fmt, ap);
	va_end(ap);
}

/* What syslog() becomes with _FORTIFY_SOURCE. */
void __syslog_chk(int, int, const char *, ...);
void
__syslog_chk(int priority, int flag, const char *fmt, ...)
{
	va_list	ap;

	(void)priority;
	(void)flag;
	va_start(ap, fmt);
	catch_syslog(fmt, ap);
	va_end(ap);
}

static void
assert_escaped(const char *in, size_t inlen, const char *want)
{
	char	out[256];
	size_t	n = log_escape(in, inlen, out, sizeof(out));

	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void
test_a_newline_is_followed_by_a_tab_as_postgresql_writes_it(void **state)
{
	(void)state;
	assert_escaped("x\n" FORGED, strlen("x\n" FORGED), "x\n\t" FORGED);
	assert_escaped("a\n\nb", 4, "a\n\t\n\tb");
	assert_escaped("\n", 1, "\n\t");
}

static void
test_cr_esc_del_and_other_control_bytes_are_spelled_out(void **state)
{
	(void)state;
	assert_escaped("a\rb", 3, "a\\rb");
	assert_escaped("\x1b[2J", 4, "\\x1b[2J");
	assert_escaped("a\x7f" "b", 3, "a\\x7fb");
	assert_escaped("\x01\x08\x0b\x0c\x1f", 5, "\\x01\\x08\\x0b\\x0c\\x1f");
	/* A NUL inside a length-delimited string is a byte like the others. */
	assert_escaped("a\0b", 3, "a\\x00b");
}

static void
test_tabs_utf8_and_printable_text_are_left_alone(void **state)
{
	const char	*plain = "user=alice database=\"caf\xc3\xa9\" \\n\tok ~";

	(void)state;
	assert_escaped(plain, strlen(plain), plain);
	assert_escaped("", 0, "");
}

static void
test_truncation_never_cuts_an_escape_in_half(void **state)
{
	char	out[6];

	(void)state;
	/* "ab" fits, "\x1b" (4 bytes) would not: stop before it. */
	assert_int_equal(log_escape("ab\x1b" "c", 4, out, sizeof(out)), 2);
	assert_string_equal(out, "ab");
	/* A newline and its tab go together or not at all. */
	assert_int_equal(log_escape("abcd\nX", 6, out, sizeof(out)), 4);
	assert_string_equal(out, "abcd");
	assert_int_equal(log_escape("abcdefgh", 8, out, sizeof(out)), 5);
	assert_string_equal(out, "abcde");
	assert_int_equal(log_escape("abc", 3, out, 0), 0);
}

/* Run log_msg with stderr going to a file; return what it wrote. */
static char *
logged(const char *user)
{
	FILE	*f = tmpfile();
	int	 saved = dup(STDERR_FILENO);
	char	*buf = calloc(1, 8192);
	size_t	 n;

	assert_non_null(f);
	assert_non_null(buf);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
	log_info("refused connection from host=127.0.0.1 port=5 user=%s "
	    "database=%s: no", user, "db\r\x1b[1m");
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	n = fread(buf, 1, 8191, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
test_a_forged_user_does_not_start_a_line_of_the_log(void **state)
{
	char	*out = logged("x\n" FORGED);
	char	*nl = strchr(out, '\n');

	(void)state;
	/* The stamp and severity are ours, and untouched. */
	assert_non_null(strstr(out, " UTC ["));
	assert_non_null(strstr(out, "] LOG:  refused connection from "));
	/* Two physical lines: the second is the tab-indented continuation. */
	assert_non_null(nl);
	assert_int_equal(nl[1], '\t');
	assert_memory_equal(nl + 2, FORGED, strlen(FORGED));
	assert_non_null(strstr(out, "database=db\\r\\x1b[1m: no\n"));
	assert_null(strstr(out, "\n" FORGED));
	assert_null(strchr(out, '\r'));
	assert_null(strchr(out, '\x1b'));
	/* ... and it ends with the newline of the line, the only other. */
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_ptr_equal(strchr(nl + 1, '\n'), out + strlen(out) - 1);
	free(out);
}

static void
test_a_long_message_is_cut_but_still_one_line(void **state)
{
	char	 user[3000], *out;

	(void)state;
	memset(user, '\n', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	out = logged(user);
	assert_true(strlen(out) < 4096);
	assert_int_equal(out[strlen(out) - 1], '\n');
	/* Every newline but the last is followed by its tab. */
	for (char *p = out; (p = strchr(p, '\n')) != NULL && p[1] != '\0'; p++)
		assert_int_equal(p[1], '\t');
	free(out);
}

static void
test_syslog_gets_one_message_escaped_the_same_way(void **state)
{
	(void)state;
	log_set_target(LOG_TARGET_SYSLOG);
	syslog_calls = 0;
	log_info("refused connection from host=127.0.0.1 port=5 user=%s "
	    "database=%s: no", "x\n" FORGED, "db\r\x1b[1m");
	log_set_target(LOG_TARGET_STDERR);
	assert_int_equal(syslog_calls, 1);
	/* No stamp of ours (syslog adds its own), the severity, escaped. */
	assert_string_equal(syslogged, "LOG:  refused connection from "
	    "host=127.0.0.1 port=5 user=x\n\t" FORGED " database=db\\r"
	    "\\x1b[1m: no");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_a_newline_is_followed_by_a_tab_as_postgresql_writes_it),
		cmocka_unit_test(
		    test_cr_esc_del_and_other_control_bytes_are_spelled_out),
		cmocka_unit_test(test_tabs_utf8_and_printable_text_are_left_alone),
		cmocka_unit_test(test_truncation_never_cuts_an_escape_in_half),
		cmocka_unit_test(test_a_forged_user_does_not_start_a_line_of_the_log),
		cmocka_unit_test(test_a_long_message_is_cut_but_still_one_line),
		cmocka_unit_test(
		    test_syslog_gets_one_message_escaped_the_same_way),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
