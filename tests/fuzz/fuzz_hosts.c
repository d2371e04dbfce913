/*
 * fuzz_hosts: arbitrary text as hosts_file, then lookups of a few names.
 * Either it parses, with every entry complete, or the error starts with a
 * file's name; never a crash, a leak, an overrun or a hang.  The same
 * bytes, as a backend's startup reply, go through the BackendKeyData
 * scanner whole and split in two: both find the same key or none.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cancelkey.h"
#include "hosts.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const uint8_t	*input;
static size_t		 input_len;

static char *
copy(const void *s, size_t n, size_t *len)
{
	char	*t = malloc(n + 1);

	if (t == NULL)
		return NULL;
	memcpy(t, s, n);
	t[n] = '\0';
	*len = n;
	return t;
}

/* Included and @ files hold one fixed line, as in fuzz_hba. */
static char *
fuzz_read(void *arg, const char *path, size_t *len, bool *missing, char *err,
    size_t errlen)
{
	(void)arg;
	if (strcmp(path, "/f/pg_hosts.conf") == 0)
		return copy(input, input_len, len);
	if (strstr(path, "missing") != NULL) {
		*missing = true;
		strncpy(err, "no such file", errlen - 1);
		err[errlen - 1] = '\0';
		return NULL;
	}
	return copy("x.test, y.test\n", 15, len);
}

static int
fuzz_list(void *arg, const char *dir, char ***names, size_t *n, char *err,
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

static const struct hba_io	fuzz_io = { fuzz_read, fuzz_list, NULL };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "a.test", "X.TEST", "", NULL };
	struct hosts	*h;
	char		 err[1024];

	{
		struct cancelkey_scan	a, b;
		enum cancelkey_result	ra, rb;
		size_t			cut = size > 0 ? data[0] % (size + 1) : 0;

		cancelkey_scan_init(&a);
		cancelkey_scan_init(&b);
		ra = cancelkey_feed(&a, data, size);
		rb = cancelkey_feed(&b, data, cut);
		if (rb == CANCELKEY_MORE)
			rb = cancelkey_feed(&b, data + cut, size - cut);
		assert(ra == rb);
		if (ra == CANCELKEY_FOUND)
			assert(a.key.pid == b.key.pid &&
			    a.key.keylen == b.key.keylen &&
			    a.key.keylen <= PGPROTO_CANCEL_MAX_KEY &&
			    memcmp(a.key.key, b.key.key, a.key.keylen) == 0);
	}
	input = data;
	input_len = size;
	err[0] = '\0';
	if ((h = hosts_parse("/f/pg_hosts.conf", &fuzz_io, err,
	    sizeof(err))) == NULL) {
		/* Every path here is absolute: the error names one. */
		assert(err[0] == '/' && strstr(err, ": ") != NULL);
		return 0;
	}
	assert(h->n <= HOSTS_MAX_ENTRIES);
	for (size_t i = 0; i < h->n; i++) {
		assert(h->v[i].cert != NULL && h->v[i].key != NULL &&
		    h->v[i].ca != NULL);
		assert(h->v[i].kind != HOSTS_NAMED || h->v[i].nnames > 0);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int	e = hosts_lookup(h, names[i]);

		assert(e >= -1 && e < (int)h->n);
		(void)hosts_label(h, e, names[i]);
	}
	hosts_free(h);
	return 0;
}
