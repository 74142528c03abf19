/* Capped growable buffer. Growth doubles (amortised O(1) appends) but never
 * past max; the NUL slot after len lets callers treat data as a C string. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "colony/buf.h"
#include "colony/error.h"
#include "core/alloc.h"

void colony_buf_init(colony_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int colony_buf_reserve(colony_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n) return COLONY_E2BIG;
    size_t need = b->len + n;
    if (need <= b->cap && b->data) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 4 ? need : cap * 2;
    if (cap > b->max) cap = b->max;
    char *p = colony__realloc(b->data, cap + 1);
    if (!p) return COLONY_ENOMEM;
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

int colony_buf_append(colony_buf *b, const void *data, size_t n)
{
    int rc = colony_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int colony_buf_append_str(colony_buf *b, const char *s)
{
    return colony_buf_append(b, s, strlen(s));
}

int colony_buf_vappendf(colony_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return COLONY_EINVAL;
    int rc = colony_buf_reserve(b, (size_t)n);
    if (rc) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int colony_buf_appendf(colony_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = colony_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void colony_buf_consume(colony_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data) b->data[b->len] = '\0';
}

void colony_buf_reset(colony_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void colony_buf_free(colony_buf *b)
{
    colony__free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

char *colony_buf_detach(colony_buf *b, size_t *len)
{
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
