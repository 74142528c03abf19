/* Percent-decoding and query-string splitting, independent of any request
 * (router_dispatch.c ties them to a request; tests call them directly). */
#include <string.h>
#include "colony/error.h"
#include "http/router_internal.h"
#include "http/parser_internal.h"

int colony__percent_decode(const char *in, size_t len, int plus_is_space, char *out,
                           size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3) return COLONY_EINVAL;
            int hi = colony__http_hex_value((unsigned char)in[i + 1]);
            int lo = colony__http_hex_value((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) return COLONY_EINVAL;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0) return COLONY_EINVAL;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == 0) {
            return COLONY_EINVAL;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return 0;
}

/* Decodes one query key or value into the arena. Text that does not decode
 * (a bad escape, %00) is kept as sent rather than dropped. */
static const char *decode_component(colony_arena *a, const char *s, size_t len)
{
    char *out = colony_arena_alloc(a, len + 1);
    if (!out) return NULL;
    size_t out_len;
    if (colony__percent_decode(s, len, 1, out, &out_len) != 0) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

colony__query *colony__query_parse(colony_arena *a, const char *query)
{
    colony__query *qs = colony_arena_calloc(a, sizeof(*qs));
    if (!qs) return NULL;
    size_t max_pairs = 1;
    for (const char *p = query; *p; p++)
        if (*p == '&') max_pairs++;
    qs->pairs = colony_arena_alloc(a, max_pairs * sizeof(*qs->pairs));
    if (!qs->pairs) return NULL;
    const char *p = query;
    for (;;) {
        size_t len = strcspn(p, "&");
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t key_len = eq ? (size_t)(eq - p) : len;
            const char *key = decode_component(a, p, key_len);
            const char *value =
                eq ? decode_component(a, eq + 1, len - key_len - 1) : colony_arena_strdup(a, "");
            if (!key || !value) return NULL;
            qs->pairs[qs->npairs].key = key;
            qs->pairs[qs->npairs].value = value;
            qs->npairs++;
        }
        if (p[len] == '\0') break;
        p += len + 1;
    }
    return qs;
}

const char *colony__query_get(const colony__query *q, const char *key)
{
    for (size_t i = 0; i < q->npairs; i++)
        if (strcmp(q->pairs[i].key, key) == 0) return q->pairs[i].value;
    return NULL;
}
