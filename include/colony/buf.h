/* A growable byte buffer with a hard cap (like curl's dynbuf): nothing a peer
 * sends can grow it past `max`. The struct is public so buffers can live inside
 * other structs; treat the fields as read-only outside buf.c. */
#ifndef COLONY_BUF_H
#define COLONY_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "export.h"

typedef struct colony_buf {
    char *data; /* always NUL-terminated when non-NULL (the NUL is not counted in len) */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated, excluding the NUL slot */
    size_t max; /* hard cap on len */
} colony_buf;

/* Initialises an empty buffer that may hold up to `max` bytes. Allocates nothing. */
COLONY_API void colony_buf_init(colony_buf *b, size_t max);
/* Appends n bytes. Returns 0, COLONY_E2BIG past the cap (buffer unchanged) or COLONY_ENOMEM. */
COLONY_API int colony_buf_append(colony_buf *b, const void *data, size_t n);
COLONY_API int colony_buf_append_str(colony_buf *b, const char *s);
/* printf-style append; same errors as colony_buf_append. */
COLONY_API int colony_buf_appendf(colony_buf *b, const char *fmt, ...) COLONY_PRINTF(2, 3);
COLONY_API int colony_buf_vappendf(colony_buf *b, const char *fmt, va_list ap);
/* Makes room for n more bytes without changing len. Same errors. */
COLONY_API int colony_buf_reserve(colony_buf *b, size_t n);
/* Drops the first n bytes (n > len drops all). Keeps the allocation. */
COLONY_API void colony_buf_consume(colony_buf *b, size_t n);
/* Sets len to 0, keeping the allocation. */
COLONY_API void colony_buf_reset(colony_buf *b);
/* Frees the memory; the buffer is empty and reusable afterwards. */
COLONY_API void colony_buf_free(colony_buf *b);
/* Hands the memory to the caller (free() it); the buffer becomes empty. */
COLONY_API char *colony_buf_detach(colony_buf *b, size_t *len);

#endif
