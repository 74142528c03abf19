/* Internal allocation wrappers. Every libcolony allocation goes through these
 * so a test build can fail the Nth allocation on purpose (curl's torture mode,
 * SQLite's test_malloc.c) and prove each failure is handled. */
#ifndef COLONY_CORE_ALLOC_H
#define COLONY_CORE_ALLOC_H

#include <stddef.h>

void *colony__malloc(size_t n);
void *colony__calloc(size_t count, size_t n);
void *colony__realloc(void *p, size_t n);
char *colony__strdup(const char *s);
char *colony__strndup(const char *s, size_t n);
void colony__free(void *p);

/* How many allocations have failed on the calling thread (injected or real).
 * Compare before and after a call that hides the cause of its failure (a
 * jansson parse reports out of memory as a syntax error) to tell the two apart. */
unsigned long colony__alloc_failed_count(void);

/* Test hooks: after `n` more successful allocations, every allocation fails
 * until colony__alloc_fail_reset(). colony__alloc_failures() counts failures
 * injected since the last reset. Not thread-aware: use in single-threaded tests. */
void colony__alloc_fail_after(long n);
/* Only allocation n + 1 fails (a transient failure: what follows succeeds). */
void colony__alloc_fail_once_after(long n);
void colony__alloc_fail_reset(void);
long colony__alloc_failures(void);

#endif
