/* Writing JSON text into a colony_buf without building a jansson tree: for
 * hot paths (error bodies, span export) where a tree would cost allocations. */
#ifndef COLONY_CORE_JSON_WRITE_H
#define COLONY_CORE_JSON_WRITE_H

#include <stddef.h>
#include "colony/buf.h"

/* The RFC 8259 escape of byte c when it needs one ('"', '\\' or a control
 * character): written to out (no NUL), its length returned; 0 for any other
 * byte. Inline: the logger's line writer shares it on its hot path. */
static inline size_t colony__json_escape(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    char named = c == '"'    ? '"'
                 : c == '\\' ? '\\'
                 : c == '\n' ? 'n'
                 : c == '\r' ? 'r'
                 : c == '\t' ? 't'
                             : 0;
    out[0] = '\\';
    if (named) {
        out[1] = named;
        return 2;
    }
    if (c >= 0x20) return 0;
    out[1] = 'u';
    out[2] = out[3] = '0';
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
}

/* Appends s as a quoted JSON string (RFC 8259 escaping; NULL is written as
 * null). Returns 0 or the colony_buf error. */
int colony__json_append_string(colony_buf *b, const char *s);

#endif
