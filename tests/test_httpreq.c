/*
 * test_httpreq: the metrics port's request heads, well-formed and not,
 * without a socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../src/httpreq.h"

/* Parse text (a C string, or len bytes of it) as httpd.c does. */
static struct httpreq
parse_n(const char *text, size_t len)
{
	static char	buf[16384];
	struct httpreq	r;
	size_t		end;

	assert_true(len < sizeof(buf));
	memcpy(buf, text, len);
	buf[len] = '\0';
	end = httpreq_head_end(buf, len);
	assert_true(end > 0);
	buf[end] = '\0';
	httpreq_parse(buf, end, &r);
	return r;
}

static struct httpreq
parse(const char *text)
{
	return parse_n(text, strlen(text));
}

static void
test_head_end_waits_for_the_empty_line(void **state)
{
	(void)state;
	assert_int_equal(httpreq_head_end("GET / HTTP/1.1\r\n", 16), 0);
	assert_int_equal(httpreq_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r", 26),
	    0);
	assert_int_equal(httpreq_head_end("GET / HTTP/1.1\r\n\r\n", 18), 18);
	assert_int_equal(httpreq_head_end("GET / HTTP/1.0\n\nrest", 20), 16);
	assert_int_equal(httpreq_head_end("", 0), 0);
}

static void
test_get_and_head_are_routed_by_path(void **state)
{
	struct httpreq	r;

	(void)state;
	r = parse("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
	assert_int_equal(r.status, 0);
	assert_false(r.head_only);
	assert_string_equal(r.path, "/metrics");
	r = parse("HEAD /healthz HTTP/1.0\n\n");
	assert_int_equal(r.status, 0);
	assert_true(r.head_only);
	assert_string_equal(r.path, "/healthz");
	/* Leading empty lines are allowed; the query is dropped. */
	r = parse("\r\nGET /readyz?verbose=1 HTTP/1.1\r\n\r\n");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.path, "/readyz");
}

static void
test_a_body_is_refused_with_413(void **state)
{
	(void)state;
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
	    .status, 413);
	assert_int_equal(parse("GET / HTTP/1.1\r\ncontent-length:1 \r\n\r\n")
	    .status, 413);
	assert_int_equal(parse("GET / HTTP/1.1\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n").status, 413);
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")
	    .status, 413);
	/* Even a method that would be refused anyway: the body matters. */
	assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
	    .status, 413);
	/* Zero is no body. */
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
	    .status, 0);
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 000 \r\n"
	    "\r\n").status, 0);
}

static void
test_other_methods_get_405(void **state)
{
	(void)state;
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\n\r\n").status, 405);
	assert_int_equal(parse("get /metrics HTTP/1.1\r\n\r\n").status, 405);
	assert_int_equal(parse("OPTIONS * HTTP/1.1\r\n\r\n").status, 405);
}

static void
test_malformed_heads_get_400(void **state)
{
	static const char *const bad[] = {
		"GET /metrics\r\n\r\n",
		"GET /metrics HTTP/2.0\r\n\r\n",
		"GET /metrics HTTP/1.1 extra\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n: no name\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
		"\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i]).status, 400);
}

static void
test_a_nul_byte_cannot_hide_a_content_length(void **state)
{
	static const char	head[] = "GET / HTTP/1.1\r\nX: a\0b\r\n"
	    "Content-Length: 5\r\n\r\n";

	(void)state;
	assert_int_equal(parse_n(head, sizeof(head) - 1).status, 400);
}

static void
test_a_target_that_is_no_route_path_is_404(void **state)
{
	char	req[600];

	(void)state;
	snprintf(req, sizeof(req), "GET /metrics%0400d HTTP/1.1\r\n\r\n", 0);
	assert_int_equal(parse(req).status, 404);
	/* Targets other than a path name no route either. */
	assert_int_equal(parse("GET * HTTP/1.1\r\n\r\n").status, 404);
	assert_int_equal(parse("GET http://x/metrics HTTP/1.1\r\n\r\n")
	    .status, 404);
	assert_int_equal(parse("GET ?a=1 HTTP/1.1\r\n\r\n").status, 404);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_end_waits_for_the_empty_line),
		cmocka_unit_test(test_get_and_head_are_routed_by_path),
		cmocka_unit_test(test_a_body_is_refused_with_413),
		cmocka_unit_test(test_other_methods_get_405),
		cmocka_unit_test(test_malformed_heads_get_400),
		cmocka_unit_test(test_a_nul_byte_cannot_hide_a_content_length),
		cmocka_unit_test(test_a_target_that_is_no_route_path_is_404),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
