/*
 * filediff: the file watcher's decision, from fingerprints alone.  Sets are
 * small (a configuration names at most a dozen files), so a quadratic
 * lookup by path is the simple and sufficient way.
 */
#include <string.h>

#include "filediff.h"

bool
filediff_same_print(const struct filediff_print *a,
    const struct filediff_print *b)
{
	return a->err == b->err &&
	    memcmp(a->hash, b->hash, sizeof(a->hash)) == 0;
}

static const struct filediff_entry *
find(const struct filediff_set *set, const char *path)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->e[i].path, path) == 0)
			return &set->e[i];
	return NULL;
}

/* Paths are unique in a set, so equal sizes and a ⊆ b make them equal. */
bool
filediff_same_set(const struct filediff_set *a, const struct filediff_set *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct filediff_entry *other = find(b, a->e[i].path);

		if (other == NULL ||
		    !filediff_same_print(&a->e[i].print, &other->print))
			return false;
	}
	return true;
}

enum filediff_action
filediff_decide(const struct filediff_set *applied,
    const struct filediff_set *tried, const struct filediff_set *now,
    size_t *changed, size_t maxchanged, size_t *nchanged)
{
	*nchanged = 0;
	if (filediff_same_set(now, applied))
		return FILEDIFF_NONE;
	for (size_t i = 0; i < now->n; i++) {
		const struct filediff_entry *was = find(applied, now->e[i].path);

		if (was != NULL &&
		    filediff_same_print(&was->print, &now->e[i].print))
			continue;
		if (*nchanged < maxchanged)
			changed[*nchanged] = i;
		(*nchanged)++;
	}
	if (tried != NULL && filediff_same_set(now, tried))
		return FILEDIFF_WAIT;
	return FILEDIFF_RELOAD;
}
