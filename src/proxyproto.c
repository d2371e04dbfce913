/*
 * proxyproto: parsing the PROXY protocol header, versions 1 (text) and 2
 * (binary, with TLVs), as HAProxy's proxy-protocol.txt specifies.  Every
 * length comes from the wire and is checked against what was received
 * before it is used.
 */
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "proxyproto.h"

#define V2_VERSION		0x2
#define V2_CMD_LOCAL		0x0
#define V2_CMD_PROXY		0x1
#define V2_FAM_UNSPEC		0x0
#define V2_FAM_INET		0x1
#define V2_FAM_INET6		0x2
#define V2_FAM_UNIX		0x3
#define V2_PROTO_UNSPEC		0x0
#define V2_PROTO_STREAM		0x1
#define V2_PROTO_DGRAM		0x2
/* Bytes of the address block, by family. */
#define V2_ADDRLEN_INET		12
#define V2_ADDRLEN_INET6	36
#define V2_ADDRLEN_UNIX		216
#define V2_TLV_CRC32C		0x03

static const uint8_t	v2_sig[PROXYPROTO_V2_SIGLEN] = PROXYPROTO_V2_SIG;

enum proxyproto_status
proxyproto_detect(const uint8_t *buf, size_t len)
{
	static const char	v1[] = PROXYPROTO_V1_PREFIX;
	size_t			v1len = sizeof(v1) - 1;
	size_t			n1 = len < v1len ? len : v1len;
	size_t			n2 = len < sizeof(v2_sig) ? len : sizeof(v2_sig);

	if (len == 0)
		return PROXYPROTO_NEED_MORE;
	if (memcmp(buf, v1, n1) == 0)
		return n1 == v1len ? PROXYPROTO_OK : PROXYPROTO_NEED_MORE;
	if (memcmp(buf, v2_sig, n2) == 0)
		return n2 == sizeof(v2_sig) ? PROXYPROTO_OK :
		    PROXYPROTO_NEED_MORE;
	return PROXYPROTO_NOT_PROXY;
}

static enum proxyproto_status
bad(struct proxyproto_header *h, const char *why)
{
	h->error = why;
	return PROXYPROTO_BAD;
}

/* A decimal port: 1 to 5 digits, at most 65535. */
static int
parse_port(const char *s, uint16_t *port)
{
	unsigned long	n = 0;
	size_t		i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 5)
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || n > 65535)
		return -1;
	*port = (uint16_t)n;
	return 0;
}

/* "TCP4 src dst sport dport" or "TCP6 ...", one space apart. */
static enum proxyproto_status
parse_v1_line(char *line, struct proxyproto_header *h)
{
	char		*field[5], *p = line;
	uint16_t	 sport, dport;
	int		 n = 0, family;
	uint8_t		 dst[16];

	if (strncmp(line, "UNKNOWN", 7) == 0 &&
	    (line[7] == '\0' || line[7] == ' ')) {
		/* The rest is to be ignored, as the specification says. */
		h->local = true;
		return PROXYPROTO_OK;
	}
	for (;;) {
		if (n == 5)
			return bad(h, "version 1 header with too many fields");
		field[n++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			break;
		*p++ = '\0';
	}
	if (n != 5)
		return bad(h, "version 1 header with too few fields");
	if (strcmp(field[0], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(field[0], "TCP6") == 0)
		family = AF_INET6;
	else
		return bad(h, "version 1 header with an unknown protocol "
		    "(not TCP4, TCP6 or UNKNOWN)");
	if (parse_port(field[3], &sport) != 0 ||
	    parse_port(field[4], &dport) != 0)
		return bad(h, "version 1 header with an invalid port");
	if (family == AF_INET) {
		struct sockaddr_in	*sin = (struct sockaddr_in *)&h->src;

		if (inet_pton(AF_INET, field[1], &sin->sin_addr) != 1 ||
		    inet_pton(AF_INET, field[2], dst) != 1)
			return bad(h, "version 1 header with an invalid "
			    "IPv4 address");
		sin->sin_family = AF_INET;
		sin->sin_port = htons(sport);
		h->srclen = sizeof(*sin);
	} else {
		struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&h->src;

		if (inet_pton(AF_INET6, field[1], &sin6->sin6_addr) != 1 ||
		    inet_pton(AF_INET6, field[2], dst) != 1)
			return bad(h, "version 1 header with an invalid "
			    "IPv6 address");
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(sport);
		h->srclen = sizeof(*sin6);
	}
	return PROXYPROTO_OK;
}

static enum proxyproto_status
parse_v1(const uint8_t *buf, size_t len, struct proxyproto_header *h)
{
	char	line[PROXYPROTO_V1_MAX];
	size_t	i, start = sizeof(PROXYPROTO_V1_PREFIX) - 1;

	for (i = start; i < len && i < PROXYPROTO_V1_MAX; i++) {
		if (buf[i] == '\r')
			break;
		/* Text only: a NUL or a control byte is not a header. */
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return bad(h, "version 1 header with a byte that is "
			    "not printable text");
	}
	if (i >= len || buf[i] != '\r') {
		if (i >= PROXYPROTO_V1_MAX)
			return bad(h, "version 1 header longer than 107 bytes");
		return PROXYPROTO_NEED_MORE;	/* no CR yet */
	}
	if (i + 2 > PROXYPROTO_V1_MAX)
		return bad(h, "version 1 header longer than 107 bytes");
	if (i + 1 >= len)
		return PROXYPROTO_NEED_MORE;	/* CR, and no LF yet */
	if (buf[i + 1] != '\n')
		return bad(h, "version 1 header with CR not followed by LF");
	memcpy(line, buf + start, i - start);
	line[i - start] = '\0';
	h->version = 1;
	h->length = i + 2;
	return parse_v1_line(line, h);
}

/* CRC-32C (Castagnoli), reflected, as the PP2_TYPE_CRC32C TLV carries. */
static uint32_t
crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* The header's checksum, computed with the TLV's own value as zeros. */
static bool
crc_matches(const uint8_t *buf, size_t hlen, size_t value_at)
{
	static const uint8_t	zero[4];
	uint32_t		want, crc;

	want = (uint32_t)buf[value_at] << 24 | (uint32_t)buf[value_at + 1] <<
	    16 | (uint32_t)buf[value_at + 2] << 8 | buf[value_at + 3];
	crc = crc32c(0, buf, value_at);
	crc = crc32c(crc, zero, 4);
	crc = crc32c(crc, buf + value_at + 4, hlen - value_at - 4);
	return crc == want;
}

static enum proxyproto_status
parse_tlvs(const uint8_t *buf, size_t off, size_t hlen,
    struct proxyproto_header *h)
{
	while (off < hlen) {
		size_t		 tlen;
		const uint8_t	*v;

		if (hlen - off < 3)
			return bad(h, "version 2 header with a truncated TLV");
		tlen = (size_t)buf[off + 1] << 8 | buf[off + 2];
		if (tlen > hlen - off - 3)
			return bad(h, "version 2 header with a TLV longer "
			    "than the header");
		v = buf + off + 3;
		switch (buf[off]) {
		case V2_TLV_CRC32C:
			if (tlen != 4)
				return bad(h, "version 2 header with a "
				    "CRC32C TLV not 4 bytes long");
			if (!crc_matches(buf, hlen, off + 3))
				return bad(h, "version 2 header whose CRC32C "
				    "does not match");
			break;
		case PROXYPROTO_TLV_AWS:
			if (tlen < 1 || v[0] != PROXYPROTO_AWS_VPCE_ID)
				break;
			if (tlen - 1 >= sizeof(h->aws_vpce))
				return bad(h, "version 2 header with an AWS "
				    "VPC endpoint id too long");
			/* For a log line: letters, digits, '-' and '.'. */
			for (size_t i = 1; i < tlen; i++)
				h->aws_vpce[i - 1] = (v[i] >= '0' && v[i] <=
				    '9') || (v[i] >= 'a' && v[i] <= 'z') ||
				    (v[i] >= 'A' && v[i] <= 'Z') ||
				    v[i] == '-' || v[i] == '.' ? (char)v[i] :
				    '?';
			h->aws_vpce[tlen - 1] = '\0';
			break;
		case PROXYPROTO_TLV_AZURE:
			if (tlen < 1 || v[0] != PROXYPROTO_AZURE_LINKID)
				break;
			if (tlen != 5)
				return bad(h, "version 2 header with an Azure "
				    "Private Link id not 4 bytes long");
			/* Little-endian, unlike the rest of the header. */
			h->azure_linkid = (uint32_t)v[1] |
			    (uint32_t)v[2] << 8 | (uint32_t)v[3] << 16 |
			    (uint32_t)v[4] << 24;
			h->has_azure_linkid = true;
			break;
		default:
			break;	/* ALPN, authority, SSL, NOOP...: not needed */
		}
		off += 3 + tlen;
	}
	return PROXYPROTO_OK;
}

static enum proxyproto_status
parse_v2(const uint8_t *buf, size_t len, struct proxyproto_header *h)
{
	unsigned	cmd, fam, proto;
	size_t		hlen, addrlen = 0;

	if (len < PROXYPROTO_V2_HDRLEN)
		return PROXYPROTO_NEED_MORE;
	if (buf[12] >> 4 != V2_VERSION)
		return bad(h, "version 2 signature with an unknown version");
	cmd = buf[12] & 0xf;
	fam = buf[13] >> 4;
	proto = buf[13] & 0xf;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return bad(h, "version 2 header with an unknown command");
	if (fam > V2_FAM_UNIX)
		return bad(h, "version 2 header with an unknown address "
		    "family");
	if (proto > V2_PROTO_DGRAM)
		return bad(h, "version 2 header with an unknown transport");
	hlen = PROXYPROTO_V2_HDRLEN + ((size_t)buf[14] << 8 | buf[15]);
	if (hlen > PROXYPROTO_V2_MAX)
		return bad(h, "version 2 header longer than 4096 bytes");
	if (len < hlen)
		return PROXYPROTO_NEED_MORE;
	h->version = 2;
	h->length = hlen;
	if (cmd == V2_CMD_LOCAL) {
		/* Health checks: the addresses, if any, are to be ignored. */
		h->local = true;
		return PROXYPROTO_OK;
	}
	if (proto == V2_PROTO_DGRAM)
		return bad(h, "version 2 header for a datagram, not a stream");
	switch (fam) {
	case V2_FAM_INET:
		addrlen = V2_ADDRLEN_INET;
		break;
	case V2_FAM_INET6:
		addrlen = V2_ADDRLEN_INET6;
		break;
	case V2_FAM_UNIX:
		addrlen = V2_ADDRLEN_UNIX;
		break;
	default:
		/* UNSPEC: nothing known of the client; the rest is skipped. */
		h->local = true;
		return PROXYPROTO_OK;
	}
	if (proto != V2_PROTO_STREAM)
		return bad(h, "version 2 header with addresses but no "
		    "transport");
	if (hlen - PROXYPROTO_V2_HDRLEN < addrlen)
		return bad(h, "version 2 header shorter than its addresses");
	if (fam == V2_FAM_INET) {
		struct sockaddr_in	*sin = (struct sockaddr_in *)&h->src;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, buf + 16, 4);
		memcpy(&sin->sin_port, buf + 24, 2);	/* both big-endian */
		h->srclen = sizeof(*sin);
	} else if (fam == V2_FAM_INET6) {
		struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&h->src;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, buf + 16, 16);
		memcpy(&sin6->sin6_port, buf + 48, 2);
		h->srclen = sizeof(*sin6);
	} else {
		/*
		 * A Unix-domain client of the balancer: no address of ours
		 * fits ("[local]" would give it the gate's own standing), so
		 * the balancer's address stands.
		 */
		h->local = true;
	}
	return parse_tlvs(buf, PROXYPROTO_V2_HDRLEN + addrlen, hlen, h);
}

enum proxyproto_status
proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_header *h)
{
	enum proxyproto_status	st;

	memset(h, 0, sizeof(*h));
	if ((st = proxyproto_detect(buf, len)) != PROXYPROTO_OK)
		return st;
	if (buf[0] == 'P')
		st = parse_v1(buf, len, h);
	else
		st = parse_v2(buf, len, h);
	if (st != PROXYPROTO_OK) {
		const char	*why = h->error;

		memset(h, 0, sizeof(*h));
		h->error = why;
	}
	return st;
}

size_t
proxyproto_note(const struct proxyproto_header *h, char *buf, size_t len)
{
	int	n = 0, m;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (h->aws_vpce[0] != '\0') {
		m = snprintf(buf, len, "aws_vpce=%s", h->aws_vpce);
		n = m < 0 ? 0 : (size_t)m >= len ? (int)len - 1 : m;
	}
	if (h->has_azure_linkid) {
		m = snprintf(buf + n, len - (size_t)n, "%sazure_linkid=%u",
		    n > 0 ? " " : "", (unsigned)h->azure_linkid);
		n = m < 0 ? n : (size_t)m >= len - (size_t)n ? (int)len - 1 :
		    n + m;
	}
	return (size_t)n;
}
