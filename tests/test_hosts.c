/*
 * test_hosts: hosts_file (pg_hosts.conf) parsing and the name lookup,
 * on files in memory: PostgreSQL 19's columns, its special names, our
 * backend= option, and each error naming file:line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/cancelkey.h"
#include "../src/hosts.h"

struct memfile {
	const char	*path;
	const char	*text;
};

static const struct memfile	*files;

static char *
mem_read(void *arg, const char *path, size_t *len, bool *missing, char *err,
    size_t errlen)
{
	(void)arg;
	for (const struct memfile *f = files; f->path != NULL; f++)
		if (strcmp(f->path, path) == 0 && f->text != NULL) {
			*len = strlen(f->text);
			return strdup(f->text);
		}
	*missing = true;
	snprintf(err, errlen, "%s: could not open: No such file or directory",
	    path);
	return NULL;
}

static int
mem_list(void *arg, const char *dir, char ***names, size_t *n, char *err,
    size_t errlen)
{
	(void)arg;
	(void)dir;
	(void)err;
	(void)errlen;
	*names = NULL;
	*n = 0;
	return 0;
}

static const struct hba_io	mem_io = { mem_read, mem_list, NULL };
static char			err[1024];

static struct hosts *
parse(const char *text)
{
	const struct memfile	fs[] = {
		{ "/etc/g/pg_hosts.conf", text },
		{ "/etc/g/names", "b.test c.test\n# comment\nd.test, e.test\n" },
		{ "/etc/g/more.conf", "f.test f.crt f.key\n" },
		{ NULL, NULL },
	};

	files = fs;
	err[0] = '\0';
	return hosts_parse("/etc/g/pg_hosts.conf", &mem_io, err, sizeof(err));
}

static void
expect_error(const char *text, const char *needle)
{
	struct hosts	*h = parse(text);

	if (h != NULL || strstr(err, needle) == NULL)
		fail_msg("%s: got %s, err \"%s\", wanted \"%s\"", text,
		    h != NULL ? "a parse" : "an error", err, needle);
	hosts_free(h);
}

/* A file written for PostgreSQL 19, without our option, as it reads it. */
static void
test_postgresql_19_file_parses_unchanged(void **state)
{
	struct hosts	*h;

	(void)state;
	h = parse("# HOSTNAME SSL_CERTIFICATE SSL_KEY SSL_CA PASSPHRASE_COMMAND"
	    " PASSPHRASE_COMMAND_RELOAD\n"
	    "a.test,A2.Test  a.crt  a.key\n"
	    "@names  /abs/b.crt  b.key  b-ca.crt  \"echo secret\"  on\n"
	    "/no_sni/  plain.crt plain.key \"\"\n"
	    "*  default.crt default.key\n");
	assert_non_null(h);
	assert_int_equal(h->n, 4);
	assert_int_equal(h->v[0].kind, HOSTS_NAMED);
	assert_int_equal(h->v[0].nnames, 2);
	assert_string_equal(h->v[0].names[1], "a2.test");
	assert_string_equal(h->v[0].cert, "/etc/g/a.crt");
	assert_string_equal(h->v[0].key, "/etc/g/a.key");
	assert_string_equal(h->v[0].ca, "");
	assert_null(h->v[0].passphrase_command);
	assert_null(h->v[0].backend_host);
	assert_int_equal(h->v[1].nnames, 4);
	assert_string_equal(h->v[1].names[3], "e.test");
	assert_string_equal(h->v[1].cert, "/abs/b.crt");
	assert_string_equal(h->v[1].ca, "/etc/g/b-ca.crt");
	assert_string_equal(h->v[1].passphrase_command, "echo secret");
	assert_true(h->v[1].passphrase_reload);
	assert_int_equal(h->v[1].lineno, 3);
	assert_int_equal(h->v[2].kind, HOSTS_NO_SNI);
	assert_string_equal(h->v[2].ca, "");
	assert_int_equal(h->v[3].kind, HOSTS_DEFAULT);
	hosts_free(h);
}

static void
test_lookup_name_then_default_no_sni_then_default(void **state)
{
	struct hosts	*h;

	(void)state;
	h = parse("a.test a.crt a.key\n/no_sni/ n.crt n.key\n* d.crt d.key\n");
	assert_non_null(h);
	assert_int_equal(hosts_lookup(h, "a.test"), 0);
	assert_int_equal(hosts_lookup(h, "A.TEST"), 0);
	assert_int_equal(hosts_lookup(h, NULL), 1);
	assert_int_equal(hosts_lookup(h, "other.test"), 2);
	assert_string_equal(hosts_label(h, 0, "A.Test"), "a.test");
	assert_string_equal(hosts_label(h, 2, "other.test"), "*");
	assert_string_equal(hosts_label(h, 1, NULL), "none");
	hosts_free(h);
}

/* Without * or /no_sni/: PostgreSQL's strict mode. */
static void
test_unknown_name_and_no_name_refused_without_default(void **state)
{
	struct hosts	*h;

	(void)state;
	h = parse("a.test a.crt a.key\n");
	assert_non_null(h);
	assert_int_equal(hosts_lookup(h, "b.test"), -1);
	assert_int_equal(hosts_lookup(h, NULL), -1);
	hosts_free(h);
	h = parse("a.test a.crt a.key\n* d.crt d.key\n");
	assert_int_equal(hosts_lookup(h, NULL), 1);
	hosts_free(h);
}

static void
test_backend_option_after_postgresql_columns(void **state)
{
	struct hosts	*h;

	(void)state;
	h = parse("a.test a.crt a.key backend=db1.internal:5433\n"
	    "b.test b.crt b.key ca.crt backend=[::1]:6000\n"
	    "c.test c.crt c.key \"\" \"cmd %p\" off backend=/run/pg:5432\n"
	    "d.test d.crt d.key \"x=y.crt\"\n");
	assert_non_null(h);
	assert_string_equal(h->v[0].backend_host, "db1.internal");
	assert_int_equal(h->v[0].backend_port, 5433);
	assert_string_equal(h->v[0].ca, "");
	assert_string_equal(h->v[1].backend_host, "::1");
	assert_string_equal(h->v[1].ca, "/etc/g/ca.crt");
	assert_string_equal(h->v[2].backend_host, "/run/pg");
	assert_false(h->v[2].passphrase_reload);
	/* Quoted, a CA file with '=' in its name is a file. */
	assert_string_equal(h->v[3].ca, "/etc/g/x=y.crt");
	assert_null(h->v[3].backend_host);
	hosts_free(h);
}

static void
test_include_and_empty_file(void **state)
{
	struct hosts	*h;

	(void)state;
	h = parse("include more.conf\na.test a.crt a.key\n");
	assert_non_null(h);
	assert_int_equal(h->n, 2);
	assert_string_equal(h->v[0].names[0], "f.test");
	assert_string_equal(h->v[0].file, "/etc/g/more.conf");
	hosts_free(h);
	h = parse("# nothing yet\n\n");
	assert_non_null(h);
	assert_int_equal(h->n, 0);
	hosts_free(h);
}

static void
test_errors_name_file_line_and_what_is_allowed(void **state)
{
	(void)state;
	expect_error("\na.test a.crt\n", "/etc/g/pg_hosts.conf:2: missing "
	    "SSL_KEY at end of line (allowed: HOSTNAME");
	expect_error("a.test\n", "missing SSL_CERTIFICATE");
	expect_error("a.test a.crt a.key ca cmd on extra\n", ":1: extra field "
	    "\"extra\" at end of line");
	expect_error("a.test a.crt,b.crt a.key\n", "multiple values for "
	    "SSL_CERTIFICATE");
	expect_error("a.test a.crt a.key ca cmd maybe\n",
	    "PASSPHRASE_COMMAND_RELOAD \"maybe\" is not a boolean");
	expect_error("*,a.test a.crt a.key\n", "* cannot be in a list");
	expect_error("a.test,/no_sni/ a.crt a.key\n", "/no_sni/ cannot be in");
	expect_error("* a a\n* b b\n", ":2: a second * entry (the first is "
	    "at /etc/g/pg_hosts.conf:1)");
	expect_error("a.test a a\nA.test b b\n", ":2: host name \"A.test\" is "
	    "already served by /etc/g/pg_hosts.conf:1");
	expect_error("a.test,a.test a a\n", "listed twice");
	expect_error("bad/name a a\n", "is not a DNS name");
	expect_error("a.test a a backend=nohost\n", "backend=\"nohost\": not "
	    "HOST:PORT");
	expect_error("a.test a a backend=h:99999\n", "not HOST:PORT");
	expect_error("a.test a a bakend=h:1\n", "unknown option \"bakend\" "
	    "(allowed: backend=HOST:PORT)");
	expect_error("a.test a a backend=h:1 ca.crt\n", "after backend=");
	expect_error("a.test a a backend=h:1 backend=h:2\n", "given twice");
	expect_error("@missing a a\n", ":1: @missing: /etc/g/missing: could "
	    "not open");
	expect_error("a.test \"a.crt a.key\n", "unterminated quoted string");
	expect_error("a.test \"\" a.key\n", "SSL_CERTIFICATE is empty");
}

static void
test_entry_and_name_counts_are_bounded(void **state)
{
	char	*text = malloc(80 * (HOSTS_MAX_ENTRIES + 2));
	size_t	 at = 0;

	(void)state;
	for (int i = 0; i <= HOSTS_MAX_ENTRIES; i++)
		at += (size_t)sprintf(text + at, "h%d.test c k\n", i);
	expect_error(text, "more than 64 entries");
	free(text);
}

/*
 * conf/pg_hosts.conf parses as shipped (comments only: no entries), and so
 * do its example lines with their '#' taken away.
 */
static void
test_shipped_example_parses(void **state)
{
	const char	*top = getenv("top_srcdir");
	char		 path[4096], *text, *examples, *out, *o;
	FILE		*f;
	long		 len;
	struct hosts	*h;

	(void)state;
	snprintf(path, sizeof(path), "%s/conf/pg_hosts.conf", top ? top : ".");
	h = hosts_parse(path, &hba_file_io, err, sizeof(err));
	if (h == NULL)
		fail_msg("%s", err);
	assert_int_equal(h->n, 0);
	hosts_free(h);

	assert_non_null(f = fopen(path, "r"));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	/* The examples are the last paragraph. */
	assert_non_null(examples = strstr(text, "\n\n"));
	while (strstr(examples + 2, "\n\n") != NULL)
		examples = strstr(examples + 2, "\n\n");
	o = out = calloc(1, (size_t)len + 1);
	for (const char *p = examples + 2; *p != '\0'; p++) {
		if ((p == examples + 2 || p[-1] == '\n') &&
		    strncmp(p, "# ", 2) == 0)
			p += 2;
		*o++ = *p;
	}
	{
		const struct memfile	fs[] = {
			{ "/etc/g/pg_hosts.conf", out },
			{ "/etc/g/reporting-names", "reports.example.com\n" },
			{ NULL, NULL },
		};

		files = fs;
		h = hosts_parse("/etc/g/pg_hosts.conf", &mem_io, err,
		    sizeof(err));
		if (h == NULL)
			fail_msg("%s", err);
		assert_int_equal(h->n, 5);
		assert_string_equal(h->v[0].backend_host,
		    "db-sales.internal");
		assert_int_equal(hosts_lookup(h, "hr"), 1);
		assert_int_equal(hosts_lookup(h, "reports.example.com"), 2);
		assert_int_equal(hosts_lookup(h, NULL), 3);
		assert_int_equal(hosts_lookup(h, "x.example.com"), 4);
		hosts_free(h);
	}
	free(out);
	free(text);
}

/* R AuthenticationOk, S ParameterStatus, K BackendKeyData, Z ReadyForQuery */
static const uint8_t	startup_reply[] = {
	'R', 0, 0, 0, 8, 0, 0, 0, 0,
	'S', 0, 0, 0, 9, 'a', 0, 'b', 0, 0,
	'K', 0, 0, 0, 12, 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef,
	'Z', 0, 0, 0, 5, 'I',
};

/* Message boundaries fall anywhere: every split finds the same key. */
static void
test_backend_key_found_at_any_split(void **state)
{
	(void)state;
	for (size_t cut = 0; cut <= sizeof(startup_reply); cut++) {
		struct cancelkey_scan	s;
		enum cancelkey_result	r;

		cancelkey_scan_init(&s);
		r = cancelkey_feed(&s, startup_reply, cut);
		if (r == CANCELKEY_MORE)
			r = cancelkey_feed(&s, startup_reply + cut,
			    sizeof(startup_reply) - cut);
		assert_int_equal(r, CANCELKEY_FOUND);
		assert_int_equal(s.key.pid, 12345);
		assert_int_equal(s.key.keylen, 4);
		assert_memory_equal(s.key.key, "\xde\xad\xbe\xef", 4);
	}
	/* One byte at a time. */
	{
		struct cancelkey_scan	s;
		enum cancelkey_result	r = CANCELKEY_MORE;

		cancelkey_scan_init(&s);
		for (size_t i = 0; i < sizeof(startup_reply) &&
		    r == CANCELKEY_MORE; i++)
			r = cancelkey_feed(&s, startup_reply + i, 1);
		assert_int_equal(r, CANCELKEY_FOUND);
	}
}

static void
test_no_key_after_error_or_ready(void **state)
{
	static const uint8_t	error[] = { 'E', 0, 0, 0, 6, 'x', 0 };
	static const uint8_t	bad[] = { 'S', 0, 0, 0, 2 };
	struct cancelkey_scan	s;

	(void)state;
	cancelkey_scan_init(&s);
	assert_int_equal(cancelkey_feed(&s, error, sizeof(error)), CANCELKEY_NONE);
	cancelkey_scan_init(&s);
	assert_int_equal(cancelkey_feed(&s, startup_reply + 32, 6),
	    CANCELKEY_NONE);
	cancelkey_scan_init(&s);
	assert_int_equal(cancelkey_feed(&s, bad, sizeof(bad)), CANCELKEY_NONE);
}

static void
test_cancel_request_finds_its_session(void **state)
{
	static const uint8_t	req[] = { 0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e,
	    0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef };
	struct cancelkey_scan	s;
	struct cancelkey	k;
	char			v[16];
	int			slot;

	(void)state;
	cancelkey_scan_init(&s);
	assert_int_equal(cancelkey_feed(&s, startup_reply,
	    sizeof(startup_reply)), CANCELKEY_FOUND);
	slot = cancelkey_add(&s.key, "backend-b", 10);
	assert_true(slot >= 0);
	/* The same key twice is refused: the first session owns it. */
	assert_int_equal(cancelkey_add(&s.key, "backend-c", 10), -1);
	assert_int_equal(cancelkey_from_request(req, sizeof(req), &k), 0);
	assert_true(cancelkey_lookup(&k, v, 10));
	assert_string_equal(v, "backend-b");
	k.key[0] ^= 1;
	assert_false(cancelkey_lookup(&k, v, 10));
	k.key[0] ^= 1;
	cancelkey_remove(slot);
	assert_false(cancelkey_lookup(&k, v, 10));
	/* Not a CancelRequest: a wrong length word. */
	assert_int_equal(cancelkey_from_request(req, sizeof(req) - 1, &k), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postgresql_19_file_parses_unchanged),
		cmocka_unit_test(
		    test_lookup_name_then_default_no_sni_then_default),
		cmocka_unit_test(
		    test_unknown_name_and_no_name_refused_without_default),
		cmocka_unit_test(test_backend_option_after_postgresql_columns),
		cmocka_unit_test(test_include_and_empty_file),
		cmocka_unit_test(test_errors_name_file_line_and_what_is_allowed),
		cmocka_unit_test(test_entry_and_name_counts_are_bounded),
		cmocka_unit_test(test_shipped_example_parses),
		cmocka_unit_test(test_backend_key_found_at_any_split),
		cmocka_unit_test(test_no_key_after_error_or_ready),
		cmocka_unit_test(test_cancel_request_finds_its_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
