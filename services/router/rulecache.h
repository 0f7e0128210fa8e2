/*
 * Compiled classification rules kept on disk, so that a router restarting (after a crash,
 * a deploy, or a new worker added for lag) does not compile the same rules again: the
 * default rule set takes seconds to compile and milliseconds to load.
 *
 * An entry is named by a key the caller derives from everything the compiled database
 * depends on (the library version, the CPU it targets, every expression and its flags), so
 * a changed rule, library or machine never loads a stale entry: it simply misses. Each file
 * carries a SHA-256 of its contents; a torn, truncated or altered file is refused and the
 * rules are compiled as if it were not there. Entries are written to a temporary name and
 * renamed, so routers starting together never read a half-written one. The directory keeps
 * the RT_RULECACHE_KEEP entries used most recently. It has the trust of the chain file: a
 * file placed there by someone who can write it is loaded.
 */
#ifndef RT_RULECACHE_H
#define RT_RULECACHE_H

#include <hs.h>
#include <stddef.h>

#define RT_RULECACHE_KEY_LEN 32 /* SHA-256 */
#define RT_RULECACHE_KEEP 8

/* Loads the entry for key from dir. 1: *db set. 0: no entry. -1: an entry that cannot be
 * used (the reason in why); the caller compiles and stores over it. */
int rt_rulecache_load(const char *dir, const unsigned char key[RT_RULECACHE_KEY_LEN],
                      hs_database_t **db, char *why, size_t whylen);

/* Stores db under key in dir (created if missing), then removes all but the
 * RT_RULECACHE_KEEP entries used most recently. 0, or -1 with the reason in why: a cache
 * that cannot be written costs the next start a compile, nothing else. */
int rt_rulecache_store(const char *dir, const unsigned char key[RT_RULECACHE_KEY_LEN],
                       const hs_database_t *db, char *why, size_t whylen);

#endif
