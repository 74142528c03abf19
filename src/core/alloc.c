#include "core/alloc.h"
#include <stdlib.h>
#include <string.h>

/* -1: no injection. Plain ints: the hooks are for single-threaded tests. */
static long fail_countdown = -1;
static long failures;

static int should_fail(void)
{
    if (fail_countdown < 0) return 0;
    if (fail_countdown == 0) {
        failures++;
        return 1;
    }
    fail_countdown--;
    return 0;
}

void *colony__malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *colony__calloc(size_t count, size_t n)
{
    return should_fail() ? NULL : calloc(count ? count : 1, n ? n : 1);
}

void *colony__realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
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
