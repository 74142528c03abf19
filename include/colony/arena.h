/* A request-scoped arena (nginx pools, h2o's req->pool): many small
 * allocations, one free. Memory is capped: an allocation past `max_total`
 * fails rather than growing without bound. */
#ifndef COLONY_ARENA_H
#define COLONY_ARENA_H

#include <stdarg.h>
#include <stddef.h>
#include "export.h"

typedef struct colony_arena colony_arena;

/* Creates an arena that allocates blocks of `block_size` bytes (0 = 4096) and
 * at most `max_total` bytes in all (0 = unlimited). NULL on allocation failure.
 * Free with colony_arena_free(). */
COLONY_API colony_arena *colony_arena_new(size_t block_size, size_t max_total);
/* 16-byte aligned memory, valid until reset or free. NULL past the cap or on ENOMEM. */
COLONY_API void *colony_arena_alloc(colony_arena *a, size_t n);
COLONY_API void *colony_arena_calloc(colony_arena *a, size_t n);
/* NUL-terminated copy of s[0..n). NULL on failure. */
COLONY_API char *colony_arena_strndup(colony_arena *a, const char *s, size_t n);
COLONY_API char *colony_arena_strdup(colony_arena *a, const char *s);
COLONY_API char *colony_arena_sprintf(colony_arena *a, const char *fmt, ...) COLONY_PRINTF(2, 3);
/* Bytes handed out since creation or the last reset. */
COLONY_API size_t colony_arena_used(const colony_arena *a);
/* Releases every allocation but keeps the first block for reuse. */
COLONY_API void colony_arena_reset(colony_arena *a);
COLONY_API void colony_arena_free(colony_arena *a);

#endif
