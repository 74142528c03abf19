#include "core/alloc.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* jansson allocates through these too, so the failure injection covers every
 * JSON document libcolony builds or parses. Set once, when libcolony is loaded
 * (a constructor: the library has no init call). It is process-wide: every
 * jansson user in the process (the application, libjwt) allocates through
 * colony__malloc from then on. That is safe, since colony__malloc/free are
 * malloc/free underneath (a block allocated before the switch is freed
 * correctly), and only a test that injects failures sees a difference. */
__attribute__((constructor)) static void route_jansson_allocations(void)
{
    json_set_alloc_funcs(colony__malloc, colony__free);
}

/* -1: no injection. Plain ints: the hooks are for single-threaded tests. */
static long fail_countdown = -1;
static long failures;
static int fail_once; /* only the one allocation fails, later ones succeed */

static int should_fail(void)
{
    if (fail_countdown < 0) return 0;
    if (fail_countdown == 0) {
        failures++;
        if (fail_once) fail_countdown = -1;
        return 1;
    }
    fail_countdown--;
    return 0;
}

/* Allocations that returned NULL on this thread (injected or real). */
static _Thread_local unsigned long thread_failures;

static void *counted(void *p)
{
    if (!p) thread_failures++;
    return p;
}

void *colony__malloc(size_t n)
{
    return counted(should_fail() ? NULL : malloc(n ? n : 1));
}

void *colony__calloc(size_t count, size_t n)
{
    return counted(should_fail() ? NULL : calloc(count ? count : 1, n ? n : 1));
}

void *colony__realloc(void *p, size_t n)
{
    return counted(should_fail() ? NULL : realloc(p, n ? n : 1));
}

unsigned long colony__alloc_failed_count(void)
{
    return thread_failures;
}

char *colony__strndup(const char *s, size_t n)
{
    char *d = colony__malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *colony__strdup(const char *s)
{
    return colony__strndup(s, strlen(s));
}

void colony__free(void *p)
{
    free(p);
}

void colony__alloc_fail_after(long n)
{
    fail_countdown = n;
    fail_once = 0;
    failures = 0;
}

void colony__alloc_fail_once_after(long n)
{
    fail_countdown = n;
    fail_once = 1;
    failures = 0;
}

void colony__alloc_fail_reset(void)
{
    fail_countdown = -1;
}

long colony__alloc_failures(void)
{
    return failures;
}
