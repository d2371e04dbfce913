/*
 * test_proxyproto: the PROXY protocol header codec on version 1 and 2
 * headers as balancers send them, on every truncation of them, at and past
 * the length limits, and on garbage.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/proxyproto.h"

#define V2_LOCAL	0x20
#define V2_PROXY	0x21
#define FAM_UNSPEC	0x00
#define FAM_TCP4	0x11
#define FAM_UDP4	0x12
#define FAM_TCP6	0x21
#define FAM_UNIX	0x31

/* A v2 header: signature, command, family, then body of blen bytes. */
static size_t
v2(uint8_t *out, uint8_t cmd, uint8_t fam, const uint8_t *body, size_t blen)
{
	memcpy(out, PROXYPROTO_V2_SIG, PROXYPROTO_V2_SIGLEN);
	out[12] = cmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen > 0)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

/* The IPv4 address block: 192.0.2.10:51234 -> 198.51.100.1:5432. */
static size_t
tcp4_block(uint8_t *b)
{
	static const uint8_t a[12] = { 192, 0, 2, 10, 198, 51, 100, 1,
	    0xc8, 0x22, 0x15, 0x38 };

	memcpy(b, a, sizeof(a));
	return sizeof(a);
}

static size_t
tlv(uint8_t *b, uint8_t type, const void *v, size_t len)
{
	b[0] = type;
	b[1] = (uint8_t)(len >> 8);
	b[2] = (uint8_t)len;
	memcpy(b + 3, v, len);
	return 3 + len;
}

static void
assert_src(const struct proxyproto_header *h, const char *addr, int port)
{
	char	text[INET6_ADDRSTRLEN];

	assert_false(h->local);
	if (h->src.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&h->src;

		assert_int_equal(h->srclen, sizeof(*sin));
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		assert_int_equal(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)&h->src;

		assert_int_equal(h->src.ss_family, AF_INET6);
		assert_int_equal(h->srclen, sizeof(*sin6));
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		assert_int_equal(ntohs(sin6->sin6_port), port);
	}
	assert_string_equal(text, addr);
}

/*
 * Every proper prefix of a valid header is NEED_MORE, never OK or BAD:
 * a header split over packets must wait, whatever the split.
 */
static void
assert_every_prefix_needs_more(const uint8_t *buf, size_t len)
{
	struct proxyproto_header h;

	for (size_t i = 0; i < len; i++)
		if (proxyproto_parse(buf, i, &h) != PROXYPROTO_NEED_MORE)
			fail_msg("prefix of %zu of %zu bytes: not NEED_MORE "
			    "(%s)", i, len, h.error ? h.error : "");
}

static void
assert_bad(const uint8_t *buf, size_t len, const char *why)
{
	struct proxyproto_header h;

	assert_int_equal(proxyproto_parse(buf, len, &h), PROXYPROTO_BAD);
	assert_non_null(h.error);
	if (strstr(h.error, why) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", h.error, why);
	assert_int_equal(h.length, 0);
}

static void
test_v1_tcp4_gives_the_source_and_its_length(void **state)
{
	const char	*s = "PROXY TCP4 192.0.2.10 198.51.100.1 51234 5432\r\n";
	uint8_t		 buf[128];
	struct proxyproto_header h;
	size_t		 n = strlen(s);

	(void)state;
	memcpy(buf, s, n);
	/* The SSLRequest after it is not the header's. */
	memcpy(buf + n, "\0\0\0\x08\x04\xd2\x16\x2f", 8);
	assert_int_equal(proxyproto_parse(buf, n + 8, &h), PROXYPROTO_OK);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.length, n);
	assert_src(&h, "192.0.2.10", 51234);
	assert_every_prefix_needs_more(buf, n);
}

static void
test_v1_tcp6_gives_the_source(void **state)
{
	const char	*s = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
	struct proxyproto_header h;

	(void)state;
	assert_int_equal(proxyproto_parse((const uint8_t *)s, strlen(s), &h),
	    PROXYPROTO_OK);
	assert_int_equal(h.length, strlen(s));
	assert_src(&h, "2001:db8::1", 1);
	assert_every_prefix_needs_more((const uint8_t *)s, strlen(s));
}

static void
test_v1_unknown_keeps_the_peer_and_ignores_the_rest(void **state)
{
	const char	*a = "PROXY UNKNOWN\r\n";
	const char	*b = "PROXY UNKNOWN ffff::1 whatever 1 2\r\n";
	struct proxyproto_header h;

	(void)state;
	assert_int_equal(proxyproto_parse((const uint8_t *)a, strlen(a), &h),
	    PROXYPROTO_OK);
	assert_true(h.local);
	assert_int_equal(h.length, strlen(a));
	assert_int_equal(proxyproto_parse((const uint8_t *)b, strlen(b), &h),
	    PROXYPROTO_OK);
	assert_true(h.local);
	assert_int_equal(h.length, strlen(b));
}

static void
test_v1_at_the_107_byte_limit_and_past_it(void **state)
{
	char		 line[200];
	struct proxyproto_header h;
	size_t		 n;

	(void)state;
	/* UNKNOWN with padding: exactly 107 bytes with CRLF. */
	n = (size_t)snprintf(line, sizeof(line), "PROXY UNKNOWN ");
	memset(line + n, 'x', 107 - 2 - n);
	memcpy(line + 105, "\r\n", 2);
	assert_int_equal(proxyproto_parse((uint8_t *)line, 107, &h),
	    PROXYPROTO_OK);
	assert_int_equal(h.length, 107);
	/* One more byte before the CR: too long, found at the CR... */
	memset(line + n, 'x', 108 - 2 - n);
	memcpy(line + 106, "\r\n", 2);
	assert_bad((uint8_t *)line, 108, "longer than 107");
	/* ... and with no CR at all, as soon as 107 bytes are in. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY ", 6);
	assert_int_equal(proxyproto_parse((uint8_t *)line, 106, &h),
	    PROXYPROTO_NEED_MORE);
	assert_bad((uint8_t *)line, 107, "longer than 107");
	assert_bad((uint8_t *)line, sizeof(line), "longer than 107");
}

static void
test_v1_malformed_lines_are_bad(void **state)
{
	static const char *const lines[] = {
		"PROXY TCP4 192.0.2.10 198.51.100.1 51234\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 51234 5432 9\r\n",
		"PROXY TCP4  192.0.2.10 198.51.100.1 51234 5432\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 51234 5432 \r\n",
		"PROXY TCP5 192.0.2.10 198.51.100.1 51234 5432\r\n",
		"PROXY tcp4 192.0.2.10 198.51.100.1 51234 5432\r\n",
		"PROXY TCP4 192.0.2.256 198.51.100.1 51234 5432\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.1 51234 5432\r\n",
		"PROXY TCP6 192.0.2.10 2001:db8::2 51234 5432\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 65536 5432\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 -1 5432\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 +1 5432\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 123456 5432\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1  5432\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 1 5432\rX",
		"PROXY TCP4 192.0.2.10 198.51.100.1 1 5432\n",
		"PROXY \r\n",
		"PROXY UNKNOWNX\r\n",
	};
	struct proxyproto_header h;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		if (proxyproto_parse((const uint8_t *)lines[i],
		    strlen(lines[i]), &h) != PROXYPROTO_BAD)
			fail_msg("not refused: %s", lines[i]);
	/* A NUL or control byte is refused at once, not waited on. */
	assert_bad((const uint8_t *)"PROXY TCP4\0", 11, "not printable");
	assert_bad((const uint8_t *)"PROXY \x01", 7, "not printable");
	assert_bad((const uint8_t *)"PROXY \xc3\xa9", 8, "not printable");
}

static void
test_v2_proxy_tcp4_with_ssl_request_after_it(void **state)
{
	uint8_t		 buf[64], body[12];
	struct proxyproto_header h;
	size_t		 n;

	(void)state;
	n = v2(buf, V2_PROXY, FAM_TCP4, body, tcp4_block(body));
	assert_int_equal(n, 28);
	memcpy(buf + n, "\0\0\0\x08\x04\xd2\x16\x2f", 8);
	assert_int_equal(proxyproto_parse(buf, n + 8, &h), PROXYPROTO_OK);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.length, 28);
	assert_src(&h, "192.0.2.10", 51234);
	assert_every_prefix_needs_more(buf, n);
}

static void
test_v2_proxy_tcp6(void **state)
{
	uint8_t		 buf[64], body[36];
	struct proxyproto_header h;
	size_t		 n;

	(void)state;
	memset(body, 0, sizeof(body));
	inet_pton(AF_INET6, "2001:db8::7", body);
	inet_pton(AF_INET6, "2001:db8::1", body + 16);
	body[32] = 0x13;
	body[33] = 0x88;			/* 5000 */
	body[34] = 0x15;
	body[35] = 0x38;
	n = v2(buf, V2_PROXY, FAM_TCP6, body, sizeof(body));
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_int_equal(h.length, 52);
	assert_src(&h, "2001:db8::7", 5000);
	assert_every_prefix_needs_more(buf, n);
}

static void
test_v2_local_is_the_balancer_itself(void **state)
{
	uint8_t		 buf[64], body[12];
	struct proxyproto_header h;
	size_t		 n;

	(void)state;
	/* AWS NLB health checks: LOCAL, UNSPEC, no body. */
	n = v2(buf, V2_LOCAL, FAM_UNSPEC, NULL, 0);
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_true(h.local);
	assert_int_equal(h.length, 16);
	assert_every_prefix_needs_more(buf, n);
	/* LOCAL with addresses: they are ignored, the length is not. */
	n = v2(buf, V2_LOCAL, FAM_TCP4, body, tcp4_block(body));
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_true(h.local);
	assert_int_equal(h.length, 28);
	/* Even a LOCAL body too short for its family is only skipped. */
	n = v2(buf, V2_LOCAL, FAM_TCP6, body, 4);
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_true(h.local);
}

static void
test_v2_proxy_unspec_and_unix_keep_the_peer(void **state)
{
	uint8_t		 buf[300], body[216];
	struct proxyproto_header h;
	size_t		 n;

	(void)state;
	n = v2(buf, V2_PROXY, FAM_UNSPEC, NULL, 0);
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_true(h.local);
	memset(body, 0, sizeof(body));
	memcpy(body, "/run/lb.sock", 12);
	n = v2(buf, V2_PROXY, FAM_UNIX, body, sizeof(body));
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_true(h.local);
	assert_int_equal(h.length, 232);
	n = v2(buf, V2_PROXY, FAM_UNIX, body, 215);
	assert_bad(buf, n, "shorter than its addresses");
}

static void
test_v2_unknown_version_command_family_transport_are_bad(void **state)
{
	uint8_t		 buf[64], body[12];
	size_t		 n;

	(void)state;
	n = v2(buf, V2_PROXY, FAM_TCP4, body, tcp4_block(body));
	buf[12] = 0x11;
	assert_bad(buf, n, "unknown version");
	buf[12] = 0x31;
	assert_bad(buf, n, "unknown version");
	buf[12] = 0x22;
	assert_bad(buf, n, "unknown command");
	buf[12] = 0x2f;
	assert_bad(buf, n, "unknown command");
	buf[12] = V2_PROXY;
	buf[13] = 0x41;
	assert_bad(buf, n, "unknown address family");
	buf[13] = 0x13;
	assert_bad(buf, n, "unknown transport");
	buf[13] = FAM_UDP4;
	assert_bad(buf, n, "datagram");
	buf[13] = 0x10;
	assert_bad(buf, n, "no transport");
	/* Found from the fixed part alone, before the body is in. */
	buf[12] = 0x23;
	assert_bad(buf, 16, "unknown command");
}

static void
test_v2_short_address_block_is_bad(void **state)
{
	uint8_t		 buf[64], body[36];
	size_t		 n;

	(void)state;
	memset(body, 0, sizeof(body));
	n = v2(buf, V2_PROXY, FAM_TCP4, body, 11);
	assert_bad(buf, n, "shorter than its addresses");
	n = v2(buf, V2_PROXY, FAM_TCP6, body, 35);
	assert_bad(buf, n, "shorter than its addresses");
}

static void
test_v2_tlvs_aws_and_azure_ids_are_read(void **state)
{
	uint8_t		 buf[256], body[200];
	struct proxyproto_header h;
	char		 note[PROXYPROTO_NOTE_MAX];
	size_t		 b, n;
	static const uint8_t vpce[] = "\x01vpce-08d2bf15fac5001c9";
	static const uint8_t azure[] = { 0x01, 0x78, 0x56, 0x34, 0x12 };

	(void)state;
	b = tcp4_block(body);
	b += tlv(body + b, 0x01, "postgresql", 10);	/* ALPN: skipped */
	b += tlv(body + b, PROXYPROTO_TLV_AWS, vpce, sizeof(vpce) - 1);
	b += tlv(body + b, PROXYPROTO_TLV_AZURE, azure, sizeof(azure));
	b += tlv(body + b, 0x04, "\0\0\0", 3);		/* NOOP */
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_int_equal(h.length, n);
	assert_src(&h, "192.0.2.10", 51234);
	assert_string_equal(h.aws_vpce, "vpce-08d2bf15fac5001c9");
	assert_true(h.has_azure_linkid);
	assert_int_equal(h.azure_linkid, 0x12345678);
	assert_int_equal(proxyproto_note(&h, note, sizeof(note)),
	    strlen("aws_vpce=vpce-08d2bf15fac5001c9 azure_linkid=305419896"));
	assert_string_equal(note,
	    "aws_vpce=vpce-08d2bf15fac5001c9 azure_linkid=305419896");
	assert_every_prefix_needs_more(buf, n);
	/* A note that does not fit is cut, and still terminated. */
	assert_int_equal(proxyproto_note(&h, note, 10), 9);
	assert_string_equal(note, "aws_vpce=");
}

static void
test_v2_other_subtypes_and_empty_tlvs_are_skipped(void **state)
{
	uint8_t		 buf[128], body[100];
	struct proxyproto_header h;
	char		 note[PROXYPROTO_NOTE_MAX];
	size_t		 b, n;

	(void)state;
	b = tcp4_block(body);
	b += tlv(body + b, PROXYPROTO_TLV_AWS, "\x02xyz", 4);
	b += tlv(body + b, PROXYPROTO_TLV_AZURE, "\x02", 1);
	b += tlv(body + b, PROXYPROTO_TLV_AWS, "", 0);
	b += tlv(body + b, 0x20, "\x07\0\0\0\0\0", 6);	/* SSL */
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_string_equal(h.aws_vpce, "");
	assert_false(h.has_azure_linkid);
	assert_int_equal(proxyproto_note(&h, note, sizeof(note)), 0);
	assert_string_equal(note, "");
}

static void
test_v2_bad_tlvs_are_bad(void **state)
{
	uint8_t		 buf[256], body[200];
	size_t		 b, n;
	char		 longid[80];

	(void)state;
	/* A TLV that claims more than the header holds. */
	b = tcp4_block(body);
	b += tlv(body + b, 0x05, "abcd", 4);
	body[b - 5] = 9;
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_bad(buf, n, "TLV longer than the header");
	/* Two stray bytes after the last TLV. */
	b = tcp4_block(body);
	b += tlv(body + b, 0x05, "abcd", 4);
	body[b++] = 0x05;
	body[b++] = 0x00;
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_bad(buf, n, "truncated TLV");
	/* Azure's id must be 4 bytes. */
	b = tcp4_block(body);
	b += tlv(body + b, PROXYPROTO_TLV_AZURE, "\x01\x01\x02\x03", 4);
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_bad(buf, n, "Private Link id");
	/* An endpoint id longer than any AWS makes. */
	longid[0] = 0x01;
	memset(longid + 1, 'a', sizeof(longid) - 1);
	b = tcp4_block(body);
	b += tlv(body + b, PROXYPROTO_TLV_AWS, longid, sizeof(longid));
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_bad(buf, n, "VPC endpoint id too long");
}

static void
test_v2_endpoint_id_is_made_safe_for_a_log_line(void **state)
{
	uint8_t		 buf[128], body[100];
	struct proxyproto_header h;
	size_t		 b, n;

	(void)state;
	b = tcp4_block(body);
	b += tlv(body + b, PROXYPROTO_TLV_AWS, "\x01vpce-1\n2 \"x\x1b", 13);
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_string_equal(h.aws_vpce, "vpce-1?2??x?");
}

/* CRC-32C over the header with the TLV value zeroed, big-endian. */
static uint32_t
ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t	crc = 0xffffffff;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
	}
	return ~crc;
}

static void
test_v2_crc32c_is_checked(void **state)
{
	uint8_t		 buf[64], body[32];
	struct proxyproto_header h;
	size_t		 b, n;
	uint32_t	 crc;

	(void)state;
	/* The standard check value of CRC-32C. */
	assert_int_equal(ref_crc32c((const uint8_t *)"123456789", 9),
	    0xE3069283);
	b = tcp4_block(body);
	b += tlv(body + b, 0x03, "\0\0\0\0", 4);
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	crc = ref_crc32c(buf, n);
	buf[n - 4] = (uint8_t)(crc >> 24);
	buf[n - 3] = (uint8_t)(crc >> 16);
	buf[n - 2] = (uint8_t)(crc >> 8);
	buf[n - 1] = (uint8_t)crc;
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	buf[18] ^= 1;			/* another source address */
	assert_bad(buf, n, "CRC32C does not match");
	b = tcp4_block(body);
	b += tlv(body + b, 0x03, "\0\0\0\0\0", 5);
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_bad(buf, n, "not 4 bytes");
}

static void
test_v2_max_length_and_past_it(void **state)
{
	static uint8_t	 buf[PROXYPROTO_V2_MAX + 64];
	static uint8_t	 body[PROXYPROTO_V2_MAX];
	struct proxyproto_header h;
	size_t		 b, n;

	(void)state;
	/* Addresses, then a NOOP TLV filling the header to the limit. */
	b = tcp4_block(body);
	memset(body + b, 0, sizeof(body) - b);
	b += tlv(body + b, 0x04, body + b + 3, PROXYPROTO_V2_MAX - 16 - 12 -
	    3);
	n = v2(buf, V2_PROXY, FAM_TCP4, body, b);
	assert_int_equal(n, PROXYPROTO_V2_MAX);
	assert_int_equal(proxyproto_parse(buf, n, &h), PROXYPROTO_OK);
	assert_int_equal(h.length, PROXYPROTO_V2_MAX);
	assert_int_equal(proxyproto_parse(buf, n - 1, &h),
	    PROXYPROTO_NEED_MORE);
	/* One byte more is refused from the 16 fixed bytes alone. */
	buf[15] += 1;
	assert_bad(buf, 16, "longer than 4096");
	/* And the largest the format allows. */
	buf[14] = buf[15] = 0xff;
	assert_bad(buf, 16, "longer than 4096");
}

static void
test_detect_tells_signatures_from_startup_packets(void **state)
{
	static const uint8_t ssl_request[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16,
	    0x2f };
	static const uint8_t client_hello[] = { 0x16, 0x03, 0x01, 0x02 };

	(void)state;
	assert_int_equal(proxyproto_detect(ssl_request, 8),
	    PROXYPROTO_NOT_PROXY);
	assert_int_equal(proxyproto_detect(client_hello, 4),
	    PROXYPROTO_NOT_PROXY);
	assert_int_equal(proxyproto_detect(NULL, 0), PROXYPROTO_NEED_MORE);
	for (size_t i = 1; i < 6; i++)
		assert_int_equal(proxyproto_detect((const uint8_t *)"PROXY ",
		    i), PROXYPROTO_NEED_MORE);
	assert_int_equal(proxyproto_detect((const uint8_t *)"PROXY ", 6),
	    PROXYPROTO_OK);
	assert_int_equal(proxyproto_detect((const uint8_t *)"PROXY!", 6),
	    PROXYPROTO_NOT_PROXY);
	for (size_t i = 1; i < 12; i++)
		assert_int_equal(proxyproto_detect((const uint8_t *)
		    PROXYPROTO_V2_SIG, i), PROXYPROTO_NEED_MORE);
	assert_int_equal(proxyproto_detect((const uint8_t *)PROXYPROTO_V2_SIG,
	    12), PROXYPROTO_OK);
	assert_int_equal(proxyproto_detect((const uint8_t *)
	    "\r\n\r\n\0\r\nQUIT!", 12), PROXYPROTO_NOT_PROXY);
}

static void
test_no_signature_is_not_proxy(void **state)
{
	struct proxyproto_header h;
	static const uint8_t ssl_request[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16,
	    0x2f };

	(void)state;
	assert_int_equal(proxyproto_parse(ssl_request, 8, &h),
	    PROXYPROTO_NOT_PROXY);
	assert_int_equal(proxyproto_parse((const uint8_t *)"GET / HTTP/1.0",
	    14, &h), PROXYPROTO_NOT_PROXY);
	assert_int_equal(proxyproto_parse((const uint8_t *)"proxy tcp4", 10,
	    &h), PROXYPROTO_NOT_PROXY);
}

/* Random bytes after each signature: never a crash, a length in range. */
static void
test_garbage_after_signatures_is_bad_or_bounded(void **state)
{
	uint8_t		 buf[PROXYPROTO_MAX + 16];
	struct proxyproto_header h;
	unsigned	 seed = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t		 len = (size_t)(rand_r(&seed) % 200);
		enum proxyproto_status st;

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)rand_r(&seed);
		if (round & 1)
			memcpy(buf, "PROXY ", 6);
		else {
			memcpy(buf, PROXYPROTO_V2_SIG, 12);
			buf[12] = (uint8_t)(0x20 | (rand_r(&seed) % 3));
			buf[13] = (uint8_t)(rand_r(&seed) % 0x40);
			buf[14] = 0;
		}
		st = proxyproto_parse(buf, len, &h);
		if (st == PROXYPROTO_OK)
			assert_true(h.length > 0 && h.length <= len);
		else if (st == PROXYPROTO_BAD)
			assert_non_null(h.error);
		else
			assert_int_equal(h.length, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4_gives_the_source_and_its_length),
		cmocka_unit_test(test_v1_tcp6_gives_the_source),
		cmocka_unit_test(test_v1_unknown_keeps_the_peer_and_ignores_the_rest),
		cmocka_unit_test(test_v1_at_the_107_byte_limit_and_past_it),
		cmocka_unit_test(test_v1_malformed_lines_are_bad),
		cmocka_unit_test(test_v2_proxy_tcp4_with_ssl_request_after_it),
		cmocka_unit_test(test_v2_proxy_tcp6),
		cmocka_unit_test(test_v2_local_is_the_balancer_itself),
		cmocka_unit_test(test_v2_proxy_unspec_and_unix_keep_the_peer),
		cmocka_unit_test(test_v2_unknown_version_command_family_transport_are_bad),
		cmocka_unit_test(test_v2_short_address_block_is_bad),
		cmocka_unit_test(test_v2_tlvs_aws_and_azure_ids_are_read),
		cmocka_unit_test(test_v2_other_subtypes_and_empty_tlvs_are_skipped),
		cmocka_unit_test(test_v2_bad_tlvs_are_bad),
		cmocka_unit_test(test_v2_endpoint_id_is_made_safe_for_a_log_line),
		cmocka_unit_test(test_v2_crc32c_is_checked),
		cmocka_unit_test(test_v2_max_length_and_past_it),
		cmocka_unit_test(test_detect_tells_signatures_from_startup_packets),
		cmocka_unit_test(test_no_signature_is_not_proxy),
		cmocka_unit_test(test_garbage_after_signatures_is_bad_or_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
