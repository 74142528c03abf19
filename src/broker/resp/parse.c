/* The RESP2 request parser, written here to behave as redis-server's own
 * (multibulk requests, inline commands and their quoting), so that every byte
 * sequence gets the reply Redis gives it — checked byte for byte against a
 * real redis-server by tests/integration/test_broker_resp.sh: the same
 * errors, the same quirks (the two bytes after a bulk string are skipped unchecked; a
 * NUL before the newline of an inline command hides the newline, as strchr
 * does in Redis). Incremental: what was parsed is not parsed again when more
 * bytes arrive. Allocates only the argument table and the inline scratch. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/resp/resp.h"

void colony__resp_parser_init(colony__resp_parser *p, const colony__resp_limits *limits)
{
    memset(p, 0, sizeof(*p));
    p->limits = *limits;
    p->bulk_len = -1;
    /* an inline line is at most 64 KiB, and unescaping never lengthens it */
    colony_buf_init(&p->scratch, COLONY__RESP_INLINE_MAX + 64);
}

void colony__resp_parser_free(colony__resp_parser *p)
{
    colony__free(p->args);
    p->args = NULL;
    p->cap = p->nargs = 0;
    colony_buf_free(&p->scratch);
}

void colony__resp_parser_next(colony__resp_parser *p)
{
    p->kind = 0;
    p->pos = 0;
    p->want = 0;
    p->bulk_len = -1;
    p->nargs = 0;
    p->scan = 0;
    p->nul_seen = 0;
    colony_buf_reset(&p->scratch);
}

int colony__resp_parse_ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n >= 21) return 0;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    size_t i = 0;
    int negative = 0;
    if (s[0] == '-') {
        negative = 1;
        if (++i == n) return 0;
    }
    if (s[i] < '1' || s[i] > '9') return 0;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (~0ULL - d) / 10) return 0;
        v = v * 10 + d;
    }
    if (negative) {
        if (v > (unsigned long long)LLONG_MAX + 1) return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return 0;
        *out = (long long)v;
    }
    return 1;
}

static long fail(colony__resp_parser *p, const char *msg)
{
    snprintf(p->error, sizeof(p->error), "Protocol error: %s", msg);
    return COLONY_EPROTO;
}

/* strchr(data + p->pos, c) on a NUL-terminated copy, as Redis looks for the
 * end of a line: the first c before any NUL. The search resumes where the
 * last one stopped, so a line arriving a byte at a time is scanned once
 * (Redis rescans it: quadratic in the line's 64 KiB). */
static const char *find_byte(colony__resp_parser *p, const char *data, size_t len, char c)
{
    if (p->nul_seen) return NULL; /* strchr never gets past it */
    size_t i = p->scan > p->pos ? p->scan : p->pos;
    for (; i < len; i++) {
        if (data[i] == c) break;
        if (data[i] == '\0') {
            p->nul_seen = 1;
            return NULL;
        }
    }
    p->scan = i;
    return i < len ? data + i : NULL;
}

static int add_arg(colony__resp_parser *p, size_t off, size_t len)
{
    if (p->nargs == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        colony__resp_arg *a = colony__realloc(p->args, cap * sizeof(*a));
        if (!a) return COLONY_ENOMEM;
        p->args = a;
        p->cap = cap;
    }
    p->args[p->nargs].off = off;
    p->args[p->nargs].len = len;
    p->args[p->nargs].ptr = NULL;
    p->nargs++;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Splits an inline command as Redis does (quotes, \xHH and backslash
 * escapes) over line[0..n) (which holds no NUL): the arguments go to the
 * scratch buffer. 0, 1 for unbalanced quotes, or COLONY_ENOMEM. */
static int split_args(colony__resp_parser *p, const char *line, size_t n)
{
    size_t i = 0;
#define AT(k) ((k) < n ? line[k] : '\0')
    for (;;) {
        while (i < n && is_space(line[i]))
            i++;
        if (i >= n) return 0;
        int inq = 0, insq = 0, done = 0;
        size_t start = p->scratch.len;
        while (!done) {
            char c = AT(i), out = 0;
            int emit = 0;
            if (inq) {
                if (c == '\\' && AT(i + 1) == 'x' && hex_value(AT(i + 2)) >= 0 &&
                    hex_value(AT(i + 3)) >= 0) {
                    out = (char)(hex_value(AT(i + 2)) * 16 + hex_value(AT(i + 3)));
                    emit = 1;
                    i += 3;
                } else if (c == '\\' && AT(i + 1)) {
                    i++;
                    switch (AT(i)) {
                    case 'n':
                        out = '\n';
                        break;
                    case 'r':
                        out = '\r';
                        break;
                    case 't':
                        out = '\t';
                        break;
                    case 'b':
                        out = '\b';
                        break;
                    case 'a':
                        out = '\a';
                        break;
                    default:
                        out = AT(i);
                        break;
                    }
                    emit = 1;
                } else if (c == '"') {
                    if (AT(i + 1) && !is_space(AT(i + 1))) return 1;
                    done = 1;
                } else if (!c) {
                    return 1;
                } else {
                    out = c;
                    emit = 1;
                }
            } else if (insq) {
                if (c == '\\' && AT(i + 1) == '\'') {
                    i++;
                    out = '\'';
                    emit = 1;
                } else if (c == '\'') {
                    if (AT(i + 1) && !is_space(AT(i + 1))) return 1;
                    done = 1;
                } else if (!c) {
                    return 1;
                } else {
                    out = c;
                    emit = 1;
                }
            } else {
                switch (c) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                case '\0':
                    done = 1;
                    break;
                case '"':
                    inq = 1;
                    break;
                case '\'':
                    insq = 1;
                    break;
                default:
                    out = c;
                    emit = 1;
                    break;
                }
            }
            if (emit && colony_buf_append(&p->scratch, &out, 1)) return COLONY_ENOMEM;
            if (AT(i)) i++;
        }
        if (add_arg(p, start, p->scratch.len - start)) return COLONY_ENOMEM;
    }
#undef AT
}

static long parse_inline(colony__resp_parser *p, const char *data, size_t len)
{
    const char *nl = find_byte(p, data, len, '\n');
    if (!nl) {
        if (len > COLONY__RESP_INLINE_MAX) return fail(p, "too big inline request");
        return 0;
    }
    size_t used = (size_t)(nl - data) + 1;
    size_t n = (size_t)(nl - data);
    if (n && data[n - 1] == '\r') n--;
    int rc = split_args(p, data, n);
    if (rc < 0) return rc;
    if (rc) return fail(p, "unbalanced quotes in request");
    for (size_t i = 0; i < p->nargs; i++) /* only empty arguments: no scratch yet */
        p->args[i].ptr = p->scratch.data ? p->scratch.data + p->args[i].off : "";
    return (long)used;
}

/* A count line ("*N" or "$N") starting at p->pos: the number and the
 * position after its CRLF, 0 if incomplete, or a protocol error. */
static long count_line(colony__resp_parser *p, const char *data, size_t len, const char *too_big,
                       long long *value, size_t *next)
{
    const char *cr = find_byte(p, data, len, '\r');
    if (!cr) {
        if (len - p->pos > COLONY__RESP_INLINE_MAX) return fail(p, too_big);
        return 0;
    }
    /* Redis wants one byte after the CR before it reads the line */
    if ((size_t)(cr - data) + 2 > len) return 0;
    size_t start = p->pos + 1;
    if (!colony__resp_parse_ll(data + start, (size_t)(cr - data) - start, value)) *value = -2;
    *next = (size_t)(cr - data) + 2;
    return 1;
}

static long parse_multibulk(colony__resp_parser *p, const char *data, size_t len)
{
    long rc;
    if (p->kind == 0) {
        long long n;
        size_t next;
        rc = count_line(p, data, len, "too big mbulk count string", &n, &next);
        if (rc <= 0) return rc;
        /* unparsable counts were mapped to -2: invalid like anything huge */
        if (n == -2 || n > (long long)p->limits.max_args || n > 2147483647LL)
            return fail(p, "invalid multibulk length");
        if (n > COLONY__RESP_UNAUTH_ARGS && p->unauthenticated)
            return fail(p, "unauthenticated multibulk length");
        p->pos = next;
        p->kind = '*';
        if (n <= 0) return (long)p->pos; /* *0 and *-1: nothing to run */
        p->want = n;
        p->bulk_len = -1;
    }
    while ((long long)p->nargs < p->want) {
        if (p->bulk_len == -1) {
            long long n;
            size_t next;
            const char *cr = find_byte(p, data, len, '\r');
            if (!cr) {
                if (len - p->pos > COLONY__RESP_INLINE_MAX)
                    return fail(p, "too big bulk count string");
                return 0;
            }
            if ((size_t)(cr - data) + 2 > len) return 0;
            if (data[p->pos] != '$') { /* not NUL: find_byte stopped there */
                char msg[40];
                char got = data[p->pos] == '\r' || data[p->pos] == '\n' ? ' ' : data[p->pos];
                snprintf(msg, sizeof(msg), "expected '$', got '%c'", got);
                return fail(p, msg);
            }
            rc = count_line(p, data, len, "too big bulk count string", &n, &next);
            if (rc <= 0) return rc;
            if (n < 0 || (unsigned long long)n > p->limits.max_bulk)
                return fail(p, "invalid bulk length");
            if (n > COLONY__RESP_UNAUTH_BULK && p->unauthenticated)
                return fail(p, "unauthenticated bulk length");
            p->pos = next;
            p->bulk_len = n;
        }
        /* the bulk and the two bytes after it, which Redis skips unread */
        if (len - p->pos < (size_t)p->bulk_len + 2) return 0;
        if (add_arg(p, p->pos, (size_t)p->bulk_len)) return COLONY_ENOMEM;
        p->pos += (size_t)p->bulk_len + 2;
        p->bulk_len = -1;
    }
    for (size_t i = 0; i < p->nargs; i++)
        p->args[i].ptr = data + p->args[i].off;
    return (long)p->pos;
}

long colony__resp_parse(colony__resp_parser *p, const char *data, size_t len)
{
    if (len == 0 && p->kind == 0) return 0;
    if (p->kind == 'i' || (p->kind == 0 && data[0] != '*')) {
        /* inline: nothing is kept between calls but the kind and the scan */
        p->kind = 'i';
        p->nargs = 0;
        colony_buf_reset(&p->scratch);
        return parse_inline(p, data, len);
    }
    return parse_multibulk(p, data, len);
}
