/* Request path normalization for matching and forwarding (RFC 3986 §6.2.2 and
 * §5.2.4, as nginx does before it matches locations): a proxy that matched one
 * spelling of a path and forwarded another would let "/public/../admin" past
 * a rule written for "/admin". */
#include <string.h>
#include "colony/error.h"
#include "colony/http_parser.h"
#include "http/parser_internal.h"

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Decodes escapes of unreserved characters and uppercases the hex digits of
 * the others. Returns the new length or COLONY_EINVAL. */
static int decode_unreserved(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (size_t r = 0; r < len; r++) {
        if (in[r] != '%') {
            out[w++] = in[r];
            continue;
        }
        if (len - r < 3) return COLONY_EINVAL;
        int hi = colony__http_hex_value(in[r + 1]), lo = colony__http_hex_value(in[r + 2]);
        if (hi < 0 || lo < 0) return COLONY_EINVAL;
        unsigned char c = (unsigned char)(hi * 16 + lo);
        if (c == 0) return COLONY_EINVAL;
        if (is_unreserved(c)) {
            out[w++] = (char)c;
        } else {
            out[w++] = '%';
            out[w++] = hex[hi];
            out[w++] = hex[lo];
        }
        r += 2;
    }
    return (int)w;
}

int colony_http_path_normalize(const char *path, size_t len, char *out)
{
    if (!path || !out || len == 0 || path[0] != '/' || len > (size_t)INT32_MAX)
        return COLONY_EINVAL;
    int m = decode_unreserved(path, len, out);
    if (m < 0) return m;
    /* remove_dot_segments in place: the write index never passes the read index */
    size_t w = 1, r = 1, end = (size_t)m;
    while (r <= end) {
        size_t e = r;
        while (e < end && out[e] != '/')
            e++;
        size_t seg = e - r;
        int last = e == end;
        if ((seg == 0 && !last) || (seg == 1 && out[r] == '.')) {
            /* an empty segment ("//") or ".": dropped */
        } else if (seg == 2 && out[r] == '.' && out[r + 1] == '.') {
            if (w == 1) return COLONY_EINVAL; /* climbs above the root */
            w--;                              /* the '/' after the previous segment */
            while (out[w - 1] != '/')
                w--;
        } else {
            memmove(out + w, out + r, seg);
            w += seg;
            if (!last) out[w++] = '/';
        }
        r = e + 1;
    }
    out[w] = '\0';
    return (int)w;
}
