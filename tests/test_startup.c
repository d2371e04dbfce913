/*
 * test_startup: the startup phase as the event loop drives it, one verdict
 * at a time, without a socket.
 */
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/startup.h"

static size_t
put_request(uint8_t *p, uint32_t code)
{
	pgproto_put32(p, 8);
	pgproto_put32(p + 4, code);
	return 8;
}

static size_t
put_startup(uint8_t *p, const char *user)
{
	size_t	n = 8;

	n += (size_t)sprintf((char *)p + n, "user") + 1;
	n += (size_t)sprintf((char *)p + n, "%s", user) + 1;
	p[n++] = '\0';
	pgproto_put32(p, (uint32_t)n);
	pgproto_put32(p + 4, 3u << 16);
	return n;
}

static const struct policy_settings	on_on = { .ssl = true,
					    .require_ssl = true };
static const struct policy_settings	on_off = { .ssl = true };
static const struct policy_settings	off = { .ssl = false };
static const struct startup_peer	peer0;

static void
test_ssl_request_alone_starts_tls(void **state)
{
	uint8_t			buf[16];
	struct policy_state	st = { 0 };
	struct startup_step	s;
	size_t			n = put_request(buf, PGPROTO_SSL_REQUEST_CODE);

	(void)state;
	startup_next(&on_off, &st, &peer0, buf, n, &s);
	assert_int_equal(s.verdict, STARTUP_TLS);
	assert_int_equal(s.reply, 'S');
	assert_int_equal(s.length, 8);
	assert_true(st.tls_active);
}

/* CVE-2021-23214: a StartupMessage in the same write as the SSLRequest. */
static void
test_bytes_after_ssl_request_are_refused_after_s(void **state)
{
	uint8_t			buf[128];
	struct policy_state	st = { 0 };
	struct startup_step	s;
	size_t			n = put_request(buf, PGPROTO_SSL_REQUEST_CODE);

	(void)state;
	n += put_startup(buf + n, "mallory");
	startup_next(&on_on, &st, &peer0, buf, n, &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE);
	assert_int_equal(s.reply, 'S');		/* never an error instead of S */
	assert_string_equal(s.sqlstate, "08P01");
	assert_string_equal(s.message,
	    "received unencrypted data after SSL request");
	assert_int_equal(s.reason, METRICS_REFUSED_INJECTION);
}

static void
test_gssenc_is_declined_then_startup_forwarded_in_the_same_buffer(void **state)
{
	uint8_t			buf[128];
	struct policy_state	st = { 0 };
	struct startup_step	s;
	size_t			n = put_request(buf,
				    PGPROTO_GSSENC_REQUEST_CODE);
	size_t			total = n + put_startup(buf + n, "alice");

	(void)state;
	startup_next(&on_off, &st, &peer0, buf, total, &s);
	assert_int_equal(s.verdict, STARTUP_REPLY);
	assert_int_equal(s.reply, 'N');
	startup_next(&on_off, &st, &peer0, buf + s.length, total - s.length, &s);
	assert_int_equal(s.verdict, STARTUP_FORWARD);
	assert_string_equal(s.pkt.user, "alice");
}

static void
test_plaintext_startup_under_require_ssl_is_refused_with_28000(void **state)
{
	uint8_t			buf[64];
	struct policy_state	st = { 0 };
	struct startup_step	s;

	(void)state;
	startup_next(&on_on, &st, &peer0, buf, put_startup(buf, "bob"), &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE_NO_SSL);
	assert_string_equal(s.pkt.user, "bob");
}

static void
test_ssl_off_declines_and_forwards_plaintext(void **state)
{
	uint8_t			buf[64];
	struct policy_state	st = { 0 };
	struct startup_step	s;

	(void)state;
	startup_next(&off, &st, &peer0, buf, put_request(buf,
	    PGPROTO_SSL_REQUEST_CODE), &s);
	assert_int_equal(s.verdict, STARTUP_REPLY);
	assert_int_equal(s.reply, 'N');
	startup_next(&off, &st, &peer0, buf, put_request(buf,
	    PGPROTO_SSL_REQUEST_CODE), &s);
	assert_int_equal(s.verdict, STARTUP_CLOSE);
	assert_int_equal(s.reason, METRICS_REFUSED_PROTOCOL);
}

static void
test_cancel_request_is_forwarded_even_under_require_ssl(void **state)
{
	uint8_t			buf[16];
	struct policy_state	st = { 0 };
	struct startup_step	s;

	(void)state;
	pgproto_put32(buf, 16);
	pgproto_put32(buf + 4, PGPROTO_CANCEL_REQUEST_CODE);
	pgproto_put32(buf + 8, 4242);
	pgproto_put32(buf + 12, 77);
	startup_next(&on_on, &st, &peer0, buf, 16, &s);
	assert_int_equal(s.verdict, STARTUP_CANCEL);
	assert_int_equal(s.pkt.cancel_pid, 4242);
}

static void
test_partial_packet_waits_and_bad_length_is_refused(void **state)
{
	uint8_t			buf[64];
	struct policy_state	st = { 0 };
	struct startup_step	s;
	size_t			n = put_startup(buf, "carol");

	(void)state;
	startup_next(&on_off, &st, &peer0, buf, n - 1, &s);
	assert_int_equal(s.verdict, STARTUP_MORE);
	pgproto_put32(buf, 20000);
	startup_next(&on_off, &st, &peer0, buf, 4, &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE);
	assert_string_equal(s.sqlstate, "08P01");
	assert_int_equal(s.reply, 0);
}

/* A TLS session as client.c sees it under clientcert = verify-full. */
static void
after_tls(struct policy_state *st)
{
	uint8_t			buf[16];
	struct startup_step	s;

	startup_next(&on_on, st, &peer0, buf, put_request(buf,
	    PGPROTO_SSL_REQUEST_CODE), &s);
	assert_int_equal(s.verdict, STARTUP_TLS);
}

static void
test_verify_full_forwards_when_the_cn_is_the_user(void **state)
{
	uint8_t			buf[64];
	struct policy_state	st = { 0 };
	struct startup_peer	peer = { .cn_required = true, .cn_ok = true,
				    .cn = "alice" };
	struct startup_step	s;

	(void)state;
	after_tls(&st);
	startup_next(&on_on, &st, &peer, buf, put_startup(buf, "alice"), &s);
	assert_int_equal(s.verdict, STARTUP_FORWARD);
}

static void
test_verify_full_refuses_another_users_cn_with_28000(void **state)
{
	uint8_t			buf[64];
	struct policy_state	st = { 0 };
	struct startup_peer	peer = { .cn_required = true, .cn_ok = true,
				    .cn = "alice" };
	struct startup_step	s;

	(void)state;
	after_tls(&st);
	startup_next(&on_on, &st, &peer, buf, put_startup(buf, "bob"), &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE);
	assert_int_equal(s.reason, METRICS_REFUSED_CERT_USER);
	assert_string_equal(s.sqlstate, "28000");
	assert_string_equal(s.message,
	    "certificate authentication failed for user \"bob\"");
	assert_non_null(strstr(s.detail, "common name \"alice\" is not the "
	    "user name \"bob\""));
}

static void
test_verify_full_refuses_a_certificate_without_one_cn(void **state)
{
	uint8_t			buf[64];
	struct policy_state	st = { 0 };
	struct startup_peer	peer = { .cn_required = true };
	struct startup_step	s;

	(void)state;
	after_tls(&st);
	startup_next(&on_on, &st, &peer, buf, put_startup(buf, "alice"), &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE);
	assert_int_equal(s.reason, METRICS_REFUSED_CERT_USER);
	assert_non_null(strstr(s.detail, "no single, well-formed common "
	    "name"));
}

/* clientcert: no certificate gets PostgreSQL's FATAL, not an alert. */
static void
test_clientcert_without_a_certificate_is_refused_with_28000(void **state)
{
	uint8_t			buf[64];
	struct policy_state	st = { 0 };
	struct startup_peer	peer = { .cert_required = true,
				    .clientcert = "verify-ca" };
	struct startup_step	s;

	(void)state;
	after_tls(&st);
	startup_next(&on_on, &st, &peer, buf, put_startup(buf, "alice"), &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE);
	assert_int_equal(s.reason, METRICS_REFUSED_NO_CLIENT_CERT);
	assert_string_equal(s.sqlstate, "28000");
	assert_string_equal(s.message,
	    "connection requires a valid client certificate");
	assert_non_null(strstr(s.detail, "clientcert = verify-ca requires "
	    "one"));
}

/* A CancelRequest's key is its credential: no certificate asked. */
static void
test_cancel_without_a_certificate_is_forwarded(void **state)
{
	uint8_t			buf[16];
	struct policy_state	st = { 0 };
	struct startup_peer	peer = { .cert_required = true,
				    .cn_required = true, .over_limit = true };
	struct startup_step	s;

	(void)state;
	after_tls(&st);
	pgproto_put32(buf, 16);
	pgproto_put32(buf + 4, PGPROTO_CANCEL_REQUEST_CODE);
	pgproto_put32(buf + 8, 4242);
	pgproto_put32(buf + 12, 77);
	startup_next(&on_on, &st, &peer, buf, 16, &s);
	assert_int_equal(s.verdict, STARTUP_CANCEL);
}

/* hba_file through the same entry point: one in-memory pg_hba.conf. */
static const char	*hba_text;

static char *
hba_read(void *arg, const char *path, size_t *len, bool *missing, char *err,
    size_t errlen)
{
	(void)arg;
	(void)path;
	(void)err;
	(void)errlen;
	*missing = false;
	*len = strlen(hba_text);
	return strdup(hba_text);
}

static const struct hba_io	hba_mem = { hba_read, NULL, NULL };

static void
test_hba_file_decides_first_and_its_reject_is_28000(void **state)
{
	char			 err[256];
	uint8_t			 buf[64];
	struct sockaddr_in	 sin = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(0x7f000001) };
	struct hba_rules	*rules;
	struct policy_state	 st = { 0 };
	struct startup_peer	 peer = { .addr = (struct sockaddr *)&sin,
				    .cert_required = true };
	struct startup_step	 s;

	(void)state;
	hba_text = "hostssl all mallory 0.0.0.0/0 reject\n"
	    "hostssl all all 127.0.0.1/32 pass\n";
	rules = hba_parse("/pg_hba.conf", NULL, &hba_mem, err, sizeof(err));
	assert_non_null(rules);
	peer.hba = rules;
	after_tls(&st);
	/* hba_file before the certificate check: its refusal is the one. */
	startup_next(&on_on, &st, &peer, buf, put_startup(buf, "mallory"), &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE);
	assert_int_equal(s.reason, METRICS_REFUSED_HBA);
	assert_string_equal(s.sqlstate, "28000");
	assert_true(s.hba_used);
	assert_int_equal(s.hba.verdict, HBA_REJECTED);
	/* Allowed by hba_file, then refused for the missing certificate. */
	memset(&st, 0, sizeof(st));
	after_tls(&st);
	startup_next(&on_on, &st, &peer, buf, put_startup(buf, "alice"), &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE);
	assert_int_equal(s.hba.verdict, HBA_ALLOW);
	assert_int_equal(s.reason, METRICS_REFUSED_NO_CLIENT_CERT);
	hba_free(rules);
}

/* Past max_connections: the SSL answer first, 53300 on the startup. */
static void
test_over_the_limit_is_refused_with_53300_at_the_startup(void **state)
{
	uint8_t			buf[64];
	struct policy_state	st = { 0 };
	struct startup_peer	peer = { .over_limit = true };
	struct startup_step	s;
	size_t			n = put_request(buf,
				    PGPROTO_GSSENC_REQUEST_CODE);

	(void)state;
	startup_next(&on_off, &st, &peer, buf, n, &s);
	assert_int_equal(s.verdict, STARTUP_REPLY);
	startup_next(&on_off, &st, &peer, buf, put_startup(buf, "carol"), &s);
	assert_int_equal(s.verdict, STARTUP_REFUSE);
	assert_int_equal(s.reason, METRICS_REFUSED_TOO_MANY);
	assert_string_equal(s.sqlstate, "53300");
	assert_string_equal(s.message, "sorry, too many clients already");
}

static void
test_admission_refuses_past_the_limit_and_drops_at_twice_it(void **state)
{
	(void)state;
	assert_int_equal(startup_admit(0, 10), STARTUP_ADMIT_OK);
	assert_int_equal(startup_admit(9, 10), STARTUP_ADMIT_OK);
	assert_int_equal(startup_admit(10, 10), STARTUP_ADMIT_REFUSE);
	assert_int_equal(startup_admit(19, 10), STARTUP_ADMIT_REFUSE);
	assert_int_equal(startup_admit(20, 10), STARTUP_ADMIT_DROP);
}

static void
test_direct_ssl_starts_on_a_handshake_record_only(void **state)
{
	struct policy_state	st = { 0 };

	(void)state;
	assert_int_equal(startup_first_byte(&st, true, 0),
	    STARTUP_FIRST_PROTOCOL);
	assert_false(st.tls_active);
	assert_int_equal(startup_first_byte(&st, false, 0), STARTUP_FIRST_GONE);
	assert_int_equal(startup_first_byte(&st, true,
	    PGPROTO_TLS_HANDSHAKE_BYTE), STARTUP_FIRST_TLS);
	assert_true(st.tls_active);
	assert_true(st.ssl_requested);
}

static void
test_direct_ssl_needs_alpn_postgresql_and_sslrequest_does_not(void **state)
{
	static const unsigned char	pg[] = "postgresql", h1[] = "http/1.1";

	(void)state;
	assert_true(startup_alpn_ok(true, pg, sizeof(pg) - 1));
	assert_false(startup_alpn_ok(true, NULL, 0));
	assert_false(startup_alpn_ok(true, h1, sizeof(h1) - 1));
	assert_false(startup_alpn_ok(true, pg, 8));	/* "postgres" */
	assert_true(startup_alpn_ok(false, NULL, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ssl_request_alone_starts_tls),
		cmocka_unit_test(test_bytes_after_ssl_request_are_refused_after_s),
		cmocka_unit_test(
		    test_gssenc_is_declined_then_startup_forwarded_in_the_same_buffer),
		cmocka_unit_test(
		    test_plaintext_startup_under_require_ssl_is_refused_with_28000),
		cmocka_unit_test(test_ssl_off_declines_and_forwards_plaintext),
		cmocka_unit_test(
		    test_cancel_request_is_forwarded_even_under_require_ssl),
		cmocka_unit_test(
		    test_partial_packet_waits_and_bad_length_is_refused),
		cmocka_unit_test(
		    test_verify_full_forwards_when_the_cn_is_the_user),
		cmocka_unit_test(
		    test_verify_full_refuses_another_users_cn_with_28000),
		cmocka_unit_test(
		    test_verify_full_refuses_a_certificate_without_one_cn),
		cmocka_unit_test(
		    test_clientcert_without_a_certificate_is_refused_with_28000),
		cmocka_unit_test(test_cancel_without_a_certificate_is_forwarded),
		cmocka_unit_test(
		    test_hba_file_decides_first_and_its_reject_is_28000),
		cmocka_unit_test(
		    test_over_the_limit_is_refused_with_53300_at_the_startup),
		cmocka_unit_test(
		    test_admission_refuses_past_the_limit_and_drops_at_twice_it),
		cmocka_unit_test(
		    test_direct_ssl_starts_on_a_handshake_record_only),
		cmocka_unit_test(
		    test_direct_ssl_needs_alpn_postgresql_and_sslrequest_does_not),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
