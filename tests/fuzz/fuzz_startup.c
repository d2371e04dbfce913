/*
 * fuzz_startup: byte streams through the startup phase exactly as the
 * event loop feeds it (startup_next on whatever is buffered, the verdict
 * carried out on the buffer), under every combination of settings.  The
 * first input byte picks the settings and where the stream is cut into
 * reads; the last one what the I/O side knows about the peer (over the
 * limit, a client certificate and its CN, direct SSL), so the decisions
 * on those are reached the way the event loop reaches them.
 */
#include <netinet/in.h>

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "startup.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A small hba_file, for inputs that ask for one. */
static const char	hba_text[] =
    "hostssl all mallory 0.0.0.0/0 reject\n"
    "hostnossl all all 0.0.0.0/0 reject\n"
    "hostssl all postgres 127.0.0.1/32 cert\n"
    "host all all 127.0.0.1/32 pass\n";

static char *
hba_read(void *arg, const char *path, size_t *len, bool *missing, char *err,
    size_t errlen)
{
	(void)arg;
	(void)path;
	(void)err;
	(void)errlen;
	*missing = false;
	*len = sizeof(hba_text) - 1;
	return strdup(hba_text);
}

static const struct hba_rules *
hba_rules(void)
{
	static const struct hba_io	io = { hba_read, NULL, NULL };
	static struct hba_rules		*rules;
	char				 err[256];

	if (rules == NULL)
		rules = hba_parse("/pg_hba.conf", NULL, &io, err, sizeof(err));
	assert(rules != NULL);
	return rules;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_settings	set;
	struct policy_state	st = { 0 };
	struct startup_peer	peer = { 0 };
	struct sockaddr_in	sin = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(0x7f000001) };
	struct startup_step	s;
	size_t			off = 0, avail, chunk;
	uint8_t			*buf;
	int			steps = 0;

	if (size < 1)
		return 0;
	set.ssl = data[0] & 1;
	set.require_ssl = data[0] & 2;
	set.clientcert = data[0] & 4;
	chunk = 1 + (data[0] >> 3);	/* bytes per simulated read */
	peer.over_limit = data[size - 1] & 1;
	peer.cn_required = data[size - 1] & 2;
	peer.cn_ok = data[size - 1] & 4;
	peer.cert_required = data[size - 1] & 8;
	peer.has_cert = data[size - 1] & 16;
	peer.clientcert = "verify-ca";
	peer.addr = (const struct sockaddr *)&sin;
	if (data[size - 1] & 32)
		peer.hba = hba_rules();
	memcpy(peer.cn, "postgres", sizeof("postgres"));
	data++;
	size--;
	/* ssl_direct: the first byte decides, as client.c asks. */
	if (set.ssl && (data[-1] & 0x80) && size > 0) {
		enum startup_first f = startup_first_byte(&st, true, data[0]);

		assert(f != STARTUP_FIRST_GONE);
		assert((f == STARTUP_FIRST_TLS) == (data[0] ==
		    PGPROTO_TLS_HANDSHAKE_BYTE));
		assert(f != STARTUP_FIRST_TLS || st.tls_active);
		/* Direct SSL without ALPN "postgresql" is refused. */
		assert(f != STARTUP_FIRST_TLS || !startup_alpn_ok(true, data, 0));
		if (f == STARTUP_FIRST_TLS) {
			data++;
			size--;
		}
	}
	/* An exact-size copy, so ASan sees any read past the end. */
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);

	for (avail = size < chunk ? size : chunk; off < size || avail > 0;) {
		startup_next(&set, &st, &peer, buf + off, avail, &s);
		/* At most an SSLRequest, a GSSENCRequest and one more. */
		assert(s.verdict == STARTUP_MORE || ++steps <= 3);
		switch (s.verdict) {
		case STARTUP_MORE:
			if (off + avail >= size)
				goto out;
			avail += chunk;
			if (off + avail > size)
				avail = size - off;
			continue;
		case STARTUP_REPLY:
			assert(s.reply == 'N');
			assert(s.length >= 8 && s.length <= avail);
			off += s.length;
			avail -= s.length;
			continue;
		case STARTUP_TLS:
			/* Only with nothing after the SSLRequest. */
			assert(set.ssl && s.length == avail);
			assert(st.tls_active);
			off += s.length;
			avail = 0;
			/* The handshake "succeeds": what follows is in TLS. */
			if (off < size)
				avail = size - off < chunk ? size - off : chunk;
			continue;
		case STARTUP_FORWARD:
			assert(s.pkt.user[0] != '\0');
			/* Never past the limit, never with a CN not the user. */
			assert(!peer.over_limit);
			assert(!peer.cert_required || peer.has_cert);
			assert(!s.hba_used || s.hba.verdict == HBA_ALLOW);
			assert(!peer.cn_required || (peer.cn_ok &&
			    strcmp(peer.cn, s.pkt.user) == 0));
			assert(!(set.ssl && (set.require_ssl ||
			    set.clientcert)) || st.tls_active);
			goto out;
		case STARTUP_REFUSE_NO_SSL:
			assert(set.ssl && !st.tls_active);
			goto out;
		case STARTUP_REFUSE:
			assert(s.sqlstate != NULL && strlen(s.sqlstate) == 5);
			assert(s.message != NULL);
			goto out;
		case STARTUP_CANCEL:
		case STARTUP_CLOSE:
			goto out;
		}
	}
out:
	free(buf);
	return 0;
}
