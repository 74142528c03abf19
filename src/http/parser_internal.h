/* Internals shared by the HTTP parser files (parser.c, parser_fields.c,
 * parser_chunked.c, http_status.c); the client and the router use the
 * character classes to check method and header-name tokens. */
#ifndef COLONY_HTTP_PARSER_INTERNAL_H
#define COLONY_HTTP_PARSER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "colony/http_parser.h"

/* Character classes, one 256-entry table of bit flags (RFC 9110 §5.6). */
enum {
    COLONY__CC_TCHAR = 0x01,  /* token character */
    COLONY__CC_FIELD = 0x02,  /* field-vchar, obs-text, SP, HTAB: allowed in a field value */
    COLONY__CC_TARGET = 0x04, /* visible ASCII 0x21-0x7E: allowed in a request-target */
    COLONY__CC_HEX = 0x08,    /* HEXDIG */
    COLONY__CC_QDTEXT = 0x10, /* qdtext: inside a quoted-string without escaping */
    COLONY__CC_WS = 0x20,     /* SP or HTAB (OWS/BWS) */
    COLONY__CC_DIGIT = 0x40,  /* DIGIT */
};
extern const uint8_t colony__http_cc[256];

#define COLONY__HTTP_IS(c, cls) ((colony__http_cc[(unsigned char)(c)] & (cls)) != 0)

/* Value of a hex digit, or -1 for any other byte (percent-escapes, chunk sizes). */
static inline int colony__http_hex_value(unsigned char c)
{
    if (!COLONY__HTTP_IS(c, COLONY__CC_HEX)) return -1;
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Copies *in (NULL = all defaults) into *out with zero fields defaulted. */
void colony__http_effective_limits(colony_http_limits *out, const colony_http_limits *in);

/* Case-insensitive ASCII comparison of s[0..len) with the lowercase literal lit
 * of length lit_len. Inline: it is on the per-field hot path. */
static inline int colony__http_ieq(const char *s, size_t len, const char *lit, size_t lit_len)
{
    if (len != lit_len) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + ('a' - 'A'));
        if (c != (unsigned char)lit[i]) return 0;
    }
    return 1;
}

/* Semantic checks on a complete head's fields: Content-Length, Transfer-Encoding,
 * Host, Connection, Expect, Upgrade (parser_fields.c). */
typedef struct colony__http_fields {
    int has_content_length;
    uint64_t content_length;
    int has_transfer_encoding;
    int te_malformed;     /* not a valid list of transfer-codings */
    int te_chunked_count; /* "chunked" codings seen */
    int te_chunked_last;  /* the final coding is chunked (without parameters) */
    int te_codings;       /* codings seen in all fields */
    int host_count;
    int host_invalid; /* a Host value that is not uri-host [":" port] */
    int connection_close;
    int connection_keep_alive;
    int connection_upgrade;
    int has_upgrade;
    int expect_continue;
} colony__http_fields;

/* Fills *f from the fields. Returns COLONY_HTTP_OK or BAD_CONTENT_LENGTH
 * (malformed, overflowing or differing values). */
colony_http_error colony__http_scan_fields(const colony_http_header *headers, size_t n,
                                           colony__http_fields *f);

#endif
