/*
 * proxyproto: the PROXY protocol header (HAProxy's, versions 1 and 2) that a
 * load balancer sends before the client's first byte.  Pure: bytes in, a
 * parsed header or the reason it is not one out.
 */
#ifndef PROXYPROTO_H
#define PROXYPROTO_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Version 1: "PROXY ", text, CRLF; 107 bytes at most, CRLF included. */
#define PROXYPROTO_V1_PREFIX	"PROXY "
#define PROXYPROTO_V1_MAX	107
/* Version 2: a 12-byte signature, then version/command, family, length. */
#define PROXYPROTO_V2_SIG	"\r\n\r\n\0\r\nQUIT\n"
#define PROXYPROTO_V2_SIGLEN	12
#define PROXYPROTO_V2_HDRLEN	16
/*
 * The longest version 2 header taken, fixed part included.  The format
 * allows 64 KiB; balancers send a few hundred bytes (addresses and a few
 * TLVs), and the header is peeked whole from the socket buffer.
 */
#define PROXYPROTO_V2_MAX	4096
/* The largest header of either version. */
#define PROXYPROTO_MAX		PROXYPROTO_V2_MAX

/* TLV types read (others are skipped). */
#define PROXYPROTO_TLV_AWS	0xEA	/* subtype 0x01: VPC endpoint id */
#define PROXYPROTO_TLV_AZURE	0xEE	/* subtype 0x01: Private Link id */
#define PROXYPROTO_AWS_VPCE_ID	0x01
#define PROXYPROTO_AZURE_LINKID	0x01

/* Longest VPC endpoint id kept ("vpce-" and 17 hex digits in practice). */
#define PROXYPROTO_VPCE_MAX	64
/* Room for proxyproto_note()'s text. */
#define PROXYPROTO_NOTE_MAX	160

enum proxyproto_status {
	PROXYPROTO_OK,		/* a whole, valid header */
	PROXYPROTO_NEED_MORE,	/* valid so far; wait for more bytes */
	PROXYPROTO_NOT_PROXY,	/* the bytes do not begin with a signature */
	PROXYPROTO_BAD,		/* a signature, then an invalid header */
};

struct proxyproto_header {
	int			 version;	/* 1 or 2 */
	/*
	 * The connection's own peer stands: v2 LOCAL (a balancer's health
	 * check), v1 UNKNOWN, or a v2 family other than IPv4/IPv6.
	 */
	bool			 local;
	struct sockaddr_storage	 src;		/* when !local: the client */
	socklen_t		 srclen;
	size_t			 length;	/* bytes the header takes */
	char			 aws_vpce[PROXYPROTO_VPCE_MAX];	/* "" if none */
	bool			 has_azure_linkid;
	uint32_t		 azure_linkid;
	const char		*error;		/* PROXYPROTO_BAD: why */
};

/*
 * Whether buf begins with a PROXY signature: OK (it does), NOT_PROXY, or
 * NEED_MORE (what there is matches the start of one).  Looks at no more
 * than the 12 signature bytes.
 */
enum proxyproto_status proxyproto_detect(const uint8_t *buf, size_t len);

/*
 * Parse a header from the first len bytes received.  On OK, h->length is
 * how many bytes to consume; the rest belongs to the client's protocol.
 * On BAD, h->error says why (static text).
 */
enum proxyproto_status proxyproto_parse(const uint8_t *buf, size_t len,
    struct proxyproto_header *h);

/*
 * The TLVs worth a log line, as "aws_vpce=vpce-... azure_linkid=N", in
 * buf (always terminated); returns the length ("" when there are none).
 */
size_t proxyproto_note(const struct proxyproto_header *, char *buf,
    size_t len);

#endif
