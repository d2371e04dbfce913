/*
 * filewatch: reloads when the configuration file or a certificate, key, CA
 * or CRL it names changes content, checked every file_check_interval on the
 * main thread's loop.  filediff.c decides; this module looks at the files.
 */
#ifndef FILEWATCH_H
#define FILEWATCH_H

#include <stdbool.h>

struct config;
struct event_base;

/* Check every this many times by content even if stat shows no change. */
#define FILEWATCH_REHASH_EVERY	12

/* A capture of the files one load read, fingerprinted before each read. */
struct filewatch_set;

/*
 * The configuration file's fingerprint, taken before the file is read (NULL:
 * -c options only), so that an edit racing the read is seen next time.
 * NULL when out of memory: the watcher then keeps the set it had.
 */
struct filewatch_set *filewatch_capture_begin(const char *config_file);

/* Add the TLS files that cfg makes snapshot_new() read, before it reads them. */
void filewatch_capture_add(struct filewatch_set *, const struct config *cfg);

void filewatch_set_free(struct filewatch_set *);

/*
 * A reload (or the start) built its snapshot from the files in set: the
 * watcher compares against them from now on, every interval seconds (0:
 * not at all).  Takes set over.
 */
void filewatch_loaded(struct event_base *, struct filewatch_set *set,
    int interval);

/* A reload failed: the files as they are now are not tried again. */
void filewatch_failed(void);

/*
 * What the watcher calls when files changed: reload as SIGHUP does and,
 * through filewatch_loaded() or filewatch_failed(), say how it went.
 */
void filewatch_set_reload(void (*reload)(void));

void filewatch_stop(void);

#endif
