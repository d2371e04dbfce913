/*
 * test_hba: hba_file and ident_file parsing and the first-match decision,
 * with the files held in memory (struct hba_io) and no socket.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/hba.h"

/* An in-memory file system: path, contents; a NULL contents is a dir. */
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
	size_t	dl = strlen(dir);

	(void)arg;
	*names = calloc(16, sizeof(char *));
	*n = 0;
	for (const struct memfile *f = files; f->path != NULL && *n < 16; f++)
		if (strncmp(f->path, dir, dl) == 0 && f->path[dl] == '/' &&
		    strchr(f->path + dl + 1, '/') == NULL)
			(*names)[(*n)++] = strdup(f->path + dl + 1);
	if (*n == 0) {
		free(*names);
		snprintf(err, errlen, "could not open directory: No such file "
		    "or directory");
		return -1;
	}
	return 0;
}

static const struct hba_io	mem_io = { mem_read, mem_list, NULL };

static char	err[1024];

static struct hba_rules *
parse(const char *hba, const char *ident)
{
	static struct memfile	fs[8];

	memset(fs, 0, sizeof(fs));
	fs[0].path = "/etc/gate/pg_hba.conf";
	fs[0].text = hba;
	fs[1].path = "/etc/gate/pg_ident.conf";
	fs[1].text = ident;
	files = fs;
	err[0] = '\0';
	return hba_parse("/etc/gate/pg_hba.conf",
	    ident != NULL ? "/etc/gate/pg_ident.conf" : NULL, &mem_io, err,
	    sizeof(err));
}

static struct sockaddr_storage	addr_buf;

static const struct sockaddr *
ip(const char *s)
{
	memset(&addr_buf, 0, sizeof(addr_buf));
	if (strchr(s, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr_buf;

		a->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&addr_buf;

		a->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &a->sin_addr), 1);
	}
	return (const struct sockaddr *)&addr_buf;
}

static enum hba_verdict
decide(const struct hba_rules *r, const char *host, bool ssl, const char *cn,
    const char *user, const char *db, struct hba_decision *d)
{
	struct hba_request	q = {
		.addr = ip(host), .ssl = ssl, .cert = cn != NULL, .cn = cn,
		.user = user, .database = db,
	};

	hba_decide(r, &q, d);
	return d->verdict;
}

static void
test_first_matching_line_wins(void **state)
{
	struct hba_rules	*r;
	struct hba_decision	 d;

	(void)state;
	r = parse("# comment\n"
	    "host  all  mallory  all  reject\n"
	    "host  all  all      all  pass\n", NULL);
	assert_non_null(r);
	assert_int_equal(decide(r, "10.1.2.3", true, NULL, "mallory", "db",
	    &d), HBA_REJECTED);
	assert_string_equal(d.message, "pg_hba.conf rejects connection for "
	    "host \"10.1.2.3\", user \"mallory\", database \"db\", SSL "
	    "encryption");
	assert_string_equal(d.log, "rejected by /etc/gate/pg_hba.conf:2");
	assert_int_equal(decide(r, "10.1.2.3", false, NULL, "alice", "db",
	    &d), HBA_ALLOW);
	assert_int_equal(d.line->lineno, 3);
	hba_free(r);
}

static void
test_no_line_gives_postgresql_message(void **state)
{
	struct hba_rules	*r;
	struct hba_decision	 d;

	(void)state;
	r = parse("hostssl all all all pass\n", NULL);
	assert_non_null(r);
	assert_int_equal(decide(r, "127.0.0.1", false, NULL, "bob", "app",
	    &d), HBA_NO_ENTRY);
	assert_string_equal(d.message, "no pg_hba.conf entry for host "
	    "\"127.0.0.1\", user \"bob\", database \"app\", no encryption");
	assert_non_null(strstr(d.log, "/etc/gate/pg_hba.conf"));
	assert_int_equal(decide(r, "127.0.0.1", true, NULL, "bob", "app", &d),
	    HBA_ALLOW);
	hba_free(r);
}

static void
test_hostnossl_and_hostssl_split_by_tls(void **state)
{
	struct hba_rules	*r;
	struct hba_decision	 d;

	(void)state;
	r = parse("hostnossl  all  all  10.0.0.0/8  pass\n"
	    "hostssl    all  all  all         pass\n", NULL);
	assert_non_null(r);
	assert_int_equal(decide(r, "10.9.9.9", false, NULL, "u", "d", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "192.168.1.1", false, NULL, "u", "d", &d),
	    HBA_NO_ENTRY);
	assert_int_equal(decide(r, "192.168.1.1", true, NULL, "u", "d", &d),
	    HBA_ALLOW);
	assert_int_equal(d.line->lineno, 2);
	hba_free(r);
}

static void
test_addresses_cidr_mask_column_and_families(void **state)
{
	struct hba_rules	*r;
	struct hba_decision	 d;

	(void)state;
	r = parse("host all a 192.168.0.0 255.255.0.0 pass\n"
	    "host all b ::1/128 pass\n"
	    "host all c 0.0.0.0/0 pass\n"
	    "host all d 10.0.0.1/32 pass\n", NULL);
	assert_non_null(r);
	assert_int_equal(decide(r, "192.168.200.1", false, NULL, "a", "x", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "192.169.0.1", false, NULL, "a", "x", &d),
	    HBA_NO_ENTRY);
	assert_int_equal(decide(r, "::1", false, NULL, "b", "x", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "127.0.0.1", false, NULL, "b", "x", &d),
	    HBA_NO_ENTRY);
	/* An IPv4 rule never matches IPv6, as in PostgreSQL. */
	assert_int_equal(decide(r, "::ffff:1.2.3.4", false, NULL, "c", "x",
	    &d), HBA_NO_ENTRY);
	assert_int_equal(decide(r, "1.2.3.4", false, NULL, "c", "x", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "10.0.0.2", false, NULL, "d", "x", &d),
	    HBA_NO_ENTRY);
	hba_free(r);
}

static void
test_names_lists_keywords_quotes_and_regex(void **state)
{
	struct hba_rules	*r;
	struct hba_decision	 d;

	(void)state;
	r = parse("host  sameuser       all            all  pass\n"
	    "host  \"all\"          alice,bob      all  pass\n"
	    "host  app            \"/^svc_[0-9]+$\" all  pass\n"
	    "host  \"my db\",other  /^ops_          all  pass\n", NULL);
	assert_non_null(r);
	assert_int_equal(decide(r, "::1", true, NULL, "carol", "carol", &d),
	    HBA_ALLOW);
	/* "all" in quotes is the database named all. */
	assert_int_equal(decide(r, "::1", true, NULL, "bob", "all", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "::1", true, NULL, "bob", "sales", &d),
	    HBA_NO_ENTRY);
	assert_int_equal(decide(r, "::1", true, NULL, "svc_12", "app", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "::1", true, NULL, "svc_x", "app", &d),
	    HBA_NO_ENTRY);
	/* Bounded repetitions within the cap are ordinary regular ones. */
	hba_free(r);
	r = parse("host all \"/^x[0-9]{2,3}$\" all pass\n", NULL);
	assert_non_null(r);
	assert_int_equal(decide(r, "::1", true, NULL, "x123", "app", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "::1", true, NULL, "x1234", "app", &d),
	    HBA_NO_ENTRY);
	hba_free(r);
	r = parse("host  sameuser       all            all  pass\n"
	    "host  \"my db\",other  /^ops_          all  pass\n", NULL);
	assert_non_null(r);
	assert_int_equal(decide(r, "::1", true, NULL, "ops_ann", "my db",
	    &d), HBA_ALLOW);
	assert_int_equal(d.line->lineno, 2);
	hba_free(r);
}

static void
test_continuation_lines_and_at_files(void **state)
{
	static const struct memfile fs[] = {
		{ "/etc/gate/pg_hba.conf", "host all \\\n  @admins \\\n"
		    "  all pass\n" },
		{ "/etc/gate/admins", "# the admins\nroot, ops\n@more\n" },
		{ "/etc/gate/more", "\"dba one\"\n" },
		{ NULL, NULL }
	};
	struct hba_rules	*r;
	struct hba_decision	 d;

	(void)state;
	files = fs;
	r = hba_parse("/etc/gate/pg_hba.conf", NULL, &mem_io, err,
	    sizeof(err));
	assert_non_null(r);
	assert_int_equal(r->nlines, 1);
	assert_int_equal(r->lines[0].nuser, 3);
	assert_int_equal(decide(r, "1.1.1.1", false, NULL, "ops", "x", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "1.1.1.1", false, NULL, "dba one", "x",
	    &d), HBA_ALLOW);
	assert_int_equal(decide(r, "1.1.1.1", false, NULL, "other", "x", &d),
	    HBA_NO_ENTRY);
	hba_free(r);
}

static void
test_include_directives(void **state)
{
	static const struct memfile fs[] = {
		{ "/etc/gate/pg_hba.conf", "include first.conf\n"
		    "include_if_exists absent.conf\n"
		    "include_dir conf.d\n"
		    "host all all all reject\n" },
		{ "/etc/gate/first.conf", "host all a all pass\n" },
		{ "/etc/gate/conf.d/20-c.conf", "host all c all pass\n" },
		{ "/etc/gate/conf.d/10-b.conf", "host all b all pass\n" },
		{ "/etc/gate/conf.d/README", "not a rule\n" },
		{ NULL, NULL }
	};
	struct hba_rules	*r;

	(void)state;
	files = fs;
	r = hba_parse("/etc/gate/pg_hba.conf", NULL, &mem_io, err,
	    sizeof(err));
	assert_non_null(r);
	assert_int_equal(r->nlines, 4);
	assert_string_equal(r->lines[0].user[0].text, "a");
	assert_string_equal(r->lines[1].user[0].text, "b");
	assert_string_equal(r->lines[1].file, "/etc/gate/conf.d/10-b.conf");
	assert_string_equal(r->lines[2].user[0].text, "c");
	assert_int_equal(r->lines[3].method, HBA_REJECT);
	hba_free(r);
}

static void
test_include_of_a_missing_file_names_the_line(void **state)
{
	(void)state;
	assert_null(parse("host all all all pass\ninclude nowhere.conf\n",
	    NULL));
	assert_non_null(strstr(err, "/etc/gate/pg_hba.conf:2: included file: "
	    "/etc/gate/nowhere.conf: could not open"));
}

static void
test_cert_with_map_and_regex_backreference(void **state)
{
	struct hba_rules	*r;
	struct hba_decision	 d;

	(void)state;
	r = parse("hostssl all admin all cert map=admins\n"
	    "hostssl all all all pass clientcert=verify-full\n"
	    "hostssl all all all pass\n",
	    "admins  ops-root           admin\n"
	    "admins  \"/^(.*)@corp$\"     \\1\n");
	assert_non_null(r);
	assert_int_equal(decide(r, "::1", true, "ops-root", "admin", "d", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "::1", true, NULL, "admin", "d", &d),
	    HBA_NO_CERT);
	assert_string_equal(d.message, "connection requires a valid client "
	    "certificate");
	assert_int_equal(decide(r, "::1", true, "eve", "admin", "d", &d),
	    HBA_CERT_FAILED);
	assert_string_equal(d.message, "certificate authentication failed "
	    "for user \"admin\"");
	assert_non_null(strstr(d.log, "no match in usermap \"admins\" for "
	    "user \"admin\" authenticated as \"eve\""));
	/* \1 is the first parenthesized part of the certificate name. */
	assert_int_equal(decide(r, "::1", true, "admin@corp", "admin", "d",
	    &d), HBA_ALLOW);
	/* verify-full without a map: the CN must be the user. */
	assert_int_equal(decide(r, "::1", true, "alice", "alice", "d", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "::1", true, "alice", "bob", "d", &d),
	    HBA_CERT_FAILED);
	assert_string_equal(d.message, "certificate validation "
	    "(clientcert=verify-full) failed for user \"bob\": CN mismatch");
	hba_free(r);
}

static void
test_clientname_dn_matches_the_subject(void **state)
{
	struct hba_rules	*r;
	struct hba_decision	 d;
	struct hba_request	 q = { .ssl = true, .cert = true, .cn = "x",
	    .dn = "CN=admin,O=Example", .user = "admin", .database = "d" };

	(void)state;
	r = parse("hostssl all all all cert clientname=DN map=dn\n",
	    "dn \"CN=admin,O=Example\" admin\n");
	assert_non_null(r);
	q.addr = ip("127.0.0.1");
	hba_decide(r, &q, &d);
	assert_int_equal(d.verdict, HBA_ALLOW);
	q.dn = "CN=admin,O=Other";
	hba_decide(r, &q, &d);
	assert_int_equal(d.verdict, HBA_CERT_FAILED);
	hba_free(r);
}

static void
test_clientcert_verify_ca_needs_only_a_certificate(void **state)
{
	struct hba_rules	*r;
	struct hba_decision	 d;

	(void)state;
	r = parse("hostssl all all all pass clientcert=verify-ca\n", NULL);
	assert_non_null(r);
	assert_non_null(hba_wants_cert(r));
	assert_int_equal(decide(r, "::1", true, "anyone", "bob", "d", &d),
	    HBA_ALLOW);
	assert_int_equal(decide(r, "::1", true, NULL, "bob", "d", &d),
	    HBA_NO_CERT);
	hba_free(r);
}

/* Each bad line is refused with FILE:LINE, what was read, what is allowed. */
static void
test_bad_lines_name_file_line_and_what_is_allowed(void **state)
{
	static const struct {
		const char	*text;
		const char	*want;
	} bad[] = {
		{ "local all all pass\n", ":1: connection type \"local\"" },
		{ "hostx all all all pass\n", "invalid connection type "
		    "\"hostx\"; allowed: host, hostssl" },
		{ "host all +admins all pass\n", "user \"+admins\": role "
		    "membership" },
		{ "host samerole all all pass\n", "role membership is known "
		    "only to the backend" },
		{ "host all all samenet pass\n", "address \"samenet\" is not "
		    "supported" },
		{ "host all all db.example.com pass\n", "invalid address "
		    "\"db.example.com\" (host names are not supported" },
		{ "host all all 10.0.0.0/33 pass\n", "the length must be 0 to "
		    "32" },
		{ "host all all 10.0.0.1 pass\n", "invalid IP mask \"pass\"" },
		{ "host all all all scram-sha-256\n", "authentication method "
		    "\"scram-sha-256\" is the backend's" },
		{ "host all all all cert\n", "cert authentication is only "
		    "supported on hostssl" },
		{ "hostssl all all all cert clientcert=verify-ca\n",
		    "clientcert only accepts \"verify-full\"" },
		{ "hostssl all all all pass clientcert=maybe\n", "invalid value "
		    "for clientcert: \"maybe\"" },
		{ "hostssl all all all pass ldapserver=x\n", "option "
		    "\"ldapserver\" is not supported" },
		{ "hostssl all all all cert map=nomap\n", "map \"nomap\" is not "
		    "in ident_file" },
		{ "host all \"/a(\" all pass\n", "invalid regular expression" },
		{ "host all all\n", "end-of-line before IP address" },
		{ "host \"unterminated all all pass\n", "unterminated quoted" },
		{ "host all a,,b all pass\n", "empty entry" },
		{ "host all \"/^a+++$\" all pass\n", "is too costly" },
		{ "host all \"/((a{64}){64}){64}\" all pass\n", "is too costly" },
		{ "# only a comment\n", "contains no entries" },
		{ "host all @nofile all pass\n", "@nofile: /etc/gate/nofile: "
		    "could not open" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hba_rules *r = parse(bad[i].text, NULL);

		if (r != NULL || strstr(err, bad[i].want) == NULL ||
		    strncmp(err, "/etc/gate/pg_hba.conf", 21) != 0)
			fail_msg("line %zu \"%s\": got \"%s\"", i, bad[i].text,
			    err);
		hba_free(r);
	}
}

static void
test_include_loop_is_refused(void **state)
{
	(void)state;
	assert_null(parse("include pg_hba.conf\n", NULL));
	assert_non_null(strstr(err, "nested more than 10 deep"));
}

/* Three @ names a level, nine levels: 3^9 reads, stopped at 1000. */
static void
test_at_file_fan_out_is_capped(void **state)
{
	static struct memfile	fs[12];
	static char		names[10][32], texts[10][64];

	(void)state;
	fs[0].path = "/etc/gate/pg_hba.conf";
	fs[0].text = "host all @a1 all pass\n";
	for (int i = 1; i <= 9; i++) {
		snprintf(names[i], sizeof(names[i]), "/etc/gate/a%d", i);
		if (i < 9)
			snprintf(texts[i], sizeof(texts[i]), "@a%d,@a%d,@a%d\n",
			    i + 1, i + 1, i + 1);
		else
			snprintf(texts[i], sizeof(texts[i]), "x\n");
		fs[i].path = names[i];
		fs[i].text = texts[i];
	}
	files = fs;
	assert_null(hba_parse("/etc/gate/pg_hba.conf", NULL, &mem_io, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "more than 1000 files read"));
}

static void
emit(void *arg, const char *text)
{
	char	*buf = arg;

	strcat(buf, text);
	strcat(buf, "\n");
}

static void
test_describe_prints_rules_as_understood(void **state)
{
	struct hba_rules	*r;
	char			 out[4096] = "";

	(void)state;
	r = parse("hostssl all admin 10.0.0.0 255.255.255.0 cert map=m\n"
	    "host all all 10.0.0.0 255.0.255.0 reject\n",
	    "m /^(.*)$ \\1\n");
	assert_non_null(r);
	hba_describe(r, emit, out);
	assert_non_null(strstr(out, "/etc/gate/pg_hba.conf:1: hostssl "
	    "database all user \"admin\" address 10.0.0.0/24: cert "
	    "(certificate CN must map to the user through map \"m\")"));
	assert_non_null(strstr(out, ":2: host database all user all address "
	    "10.0.0.0 mask 255.0.255.0: reject"));
	assert_non_null(strstr(out, "/etc/gate/pg_ident.conf:1: map \"m\": "
	    "certificate name /^(.*)$ -> user \"\\1\""));
	hba_free(r);
}

/* The example files shipped in conf/ parse, through the real file I/O. */
static void
test_shipped_examples_parse(void **state)
{
	const char		*top = getenv("top_srcdir");
	char			 hba[4096], ident[4096];
	struct hba_rules	*r;

	(void)state;
	snprintf(hba, sizeof(hba), "%s/conf/pg_hba.conf", top ? top : ".");
	snprintf(ident, sizeof(ident), "%s/conf/pg_ident.conf",
	    top ? top : ".");
	r = hba_parse(hba, ident, &hba_file_io, err, sizeof(err));
	if (r == NULL)
		fail_msg("%s", err);
	assert_int_equal(r->nlines, 6);
	assert_int_equal(r->nidents, 2);
	hba_free(r);
	/* A directory is not a rules file. */
	snprintf(hba, sizeof(hba), "%s/conf", top ? top : ".");
	assert_null(hba_parse(hba, NULL, &hba_file_io, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_matching_line_wins),
		cmocka_unit_test(test_no_line_gives_postgresql_message),
		cmocka_unit_test(test_hostnossl_and_hostssl_split_by_tls),
		cmocka_unit_test(test_addresses_cidr_mask_column_and_families),
		cmocka_unit_test(test_names_lists_keywords_quotes_and_regex),
		cmocka_unit_test(test_continuation_lines_and_at_files),
		cmocka_unit_test(test_include_directives),
		cmocka_unit_test(test_include_of_a_missing_file_names_the_line),
		cmocka_unit_test(test_cert_with_map_and_regex_backreference),
		cmocka_unit_test(test_clientname_dn_matches_the_subject),
		cmocka_unit_test(test_clientcert_verify_ca_needs_only_a_certificate),
		cmocka_unit_test(test_bad_lines_name_file_line_and_what_is_allowed),
		cmocka_unit_test(test_include_loop_is_refused),
		cmocka_unit_test(test_at_file_fan_out_is_capped),
		cmocka_unit_test(test_describe_prints_rules_as_understood),
		cmocka_unit_test(test_shipped_examples_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
