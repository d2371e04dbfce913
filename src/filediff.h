/*
 * filediff: what the file watcher does when it has looked at the files
 * again.  Pure: it compares fingerprints (content hashes, or why a file could
 * not be read) and never touches a file, so it is unit-tested on its own.
 */
#ifndef FILEDIFF_H
#define FILEDIFF_H

#include <stdbool.h>
#include <stddef.h>

#define FILEDIFF_HASH_LEN	32	/* SHA-256 */

/* What a file could not be read as: not an errno value. */
#define FILEDIFF_NOT_REGULAR	(-1)

/* One file's content as last seen: err 0 and its hash, or why not. */
struct filediff_print {
	int		err;		/* 0, an errno value or FILEDIFF_* */
	unsigned char	hash[FILEDIFF_HASH_LEN];	/* all 0 unless err 0 */
};

struct filediff_entry {
	const char		*path;
	struct filediff_print	 print;
};

/* A set of files, each path once, in no particular order. */
struct filediff_set {
	const struct filediff_entry	*e;
	size_t				 n;
};

enum filediff_action {
	FILEDIFF_NONE,		/* the files are those in force */
	FILEDIFF_RELOAD,	/* new contents: build a new snapshot */
	FILEDIFF_WAIT,		/* what a failed reload read: wait for more */
};

bool filediff_same_print(const struct filediff_print *,
    const struct filediff_print *);

/* The same paths, each with the same fingerprint. */
bool filediff_same_set(const struct filediff_set *,
    const struct filediff_set *);

/*
 * applied: the files the serving snapshot was built from; tried: what the
 * last failed reload read since then (NULL: none failed); now: the same
 * paths as applied, looked at again.  Files now as in applied: NONE; as in
 * tried: WAIT (the failure was logged once; a half-written certificate and
 * key pair waits for its other half); anything else: RELOAD.  For RELOAD and
 * WAIT, changed[] gets the indices in now of the files that differ from
 * applied (at most maxchanged), *nchanged how many there are in all.
 */
enum filediff_action filediff_decide(const struct filediff_set *applied,
    const struct filediff_set *tried, const struct filediff_set *now,
    size_t *changed, size_t maxchanged, size_t *nchanged);

#endif
