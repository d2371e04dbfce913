/*
 * fuzz_hba: arbitrary text as hba_file (and, after a line "%%", as
 * ident_file), then decisions on a few connections.  Either it parses or
 * the error starts with a file's name; never a crash, a leak, an
 * overrun or a hang.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hba.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char	*hba_text, *ident_text;
static size_t		 hba_len, ident_len;

static char *
copy(const char *s, size_t n, size_t *len)
{
	char	*t = malloc(n + 1);

	if (t == NULL)
		return NULL;
	memcpy(t, s, n);
	t[n] = '\0';
	*len = n;
	return t;
}

/*
 * Included and @ files hold one fixed line: the fuzz input including
 * itself many times over would be an exponential walk, not a finding.
 */
static char *
fuzz_read(void *arg, const char *path, size_t *len, bool *missing, char *err,
    size_t errlen)
{
	(void)arg;
	if (strcmp(path, "/f/pg_hba.conf") == 0)
		return copy(hba_text, hba_len, len);
	if (strcmp(path, "/f/pg_ident.conf") == 0)
		return copy(ident_text, ident_len, len);
	if (strstr(path, "missing") != NULL) {
		*missing = true;
		strncpy(err, "no such file", errlen - 1);
		err[errlen - 1] = '\0';
		return NULL;
	}
	return copy("host all all all pass\n", 22, len);
}

static int
fuzz_list(void *arg, const char *dir, char ***names, size_t *n, char *err,
    size_t errlen)
{
	(void)arg;
	(void)dir;
	(void)err;
	(void)errlen;
	if ((*names = calloc(2, sizeof(char *))) == NULL)
		return -1;
	(*names)[0] = strdup("10-a.conf");
	(*names)[1] = strdup(".hidden.conf");
	*n = 2;
	return 0;
}

static void
emit(void *arg, const char *text)
{
	(void)arg;
	assert(strlen(text) < 4096);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hba_io	 io = { fuzz_read, fuzz_list, NULL };
	const char			*text = (const char *)data;
	const char			*sep;
	struct hba_rules		*r;
	struct hba_decision		 d;
	struct sockaddr_in		 v4 = { .sin_family = AF_INET };
	struct sockaddr_in6		 v6 = { .sin6_family = AF_INET6 };
	char				 err[512] = "";

	sep = memmem(text, size, "\n%%\n", 4);
	hba_text = text;
	hba_len = sep != NULL ? (size_t)(sep - text) : size;
	ident_text = sep != NULL ? sep + 4 : "";
	ident_len = sep != NULL ? size - hba_len - 4 : 0;
	r = hba_parse("/f/pg_hba.conf", sep != NULL ? "/f/pg_ident.conf" :
	    NULL, &io, err, sizeof(err));
	if (r == NULL) {
		/* Every path here is absolute: the message starts with one. */
		assert(err[0] == '/' && strchr(err, ':') != NULL);
		return 0;
	}
	inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr);
	inet_pton(AF_INET6, "::1", &v6.sin6_addr);
	for (int i = 0; i < 8; i++) {
		struct hba_request q = {
			.addr = i & 1 ? (struct sockaddr *)&v6 :
			    (struct sockaddr *)&v4,
			.ssl = i & 2, .cert = i & 4, .cn = i & 4 ? "alice" :
			    NULL, .dn = i & 4 ? "CN=alice,O=x" : NULL,
			.user = i & 4 ? "alice" : "postgres",
			.database = i & 2 ? "app" : "postgres",
		};

		hba_decide(r, &q, &d);
		assert(d.verdict <= HBA_CERT_FAILED);
		assert(d.verdict == HBA_ALLOW || d.message[0] != '\0');
	}
	hba_describe(r, emit, NULL);
	hba_free(r);
	return 0;
}
