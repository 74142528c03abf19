/* The RESP2 reply writer: one function per type, each appending to a capped
 * colony_buf (the connection's output, whose cap is the client's output
 * limit). A failed append leaves the buffer as it was. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "broker/resp/resp.h"

/* prefix, text, CRLF in one append so a failure writes nothing */
static int line(colony_buf *out, char prefix, const char *s, size_t n)
{
    size_t before = out->len;
    int rc = colony_buf_reserve(out, n + 3);
    if (rc) return rc;
    if ((rc = colony_buf_append(out, &prefix, 1)) || (rc = colony_buf_append(out, s, n)) ||
        (rc = colony_buf_append(out, "\r\n", 2))) {
        out->len = before;
        if (out->data) out->data[before] = '\0';
    }
    return rc;
}

int colony__resp_simple(colony_buf *out, const char *s)
{
    return line(out, '+', s, strlen(s));
}

int colony__resp_error(colony_buf *out, const char *s)
{
    return line(out, '-', s, strlen(s));
}

int colony__resp_errorf(colony_buf *out, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0) return COLONY_EINVAL;
    size_t len = strlen(text); /* a %c of NUL ends the text, as in Redis */
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\r' || text[i] == '\n') text[i] = ' ';
    return line(out, '-', text, len);
}

/* v in decimal at the end of num[32]; returns where it starts (no printf:
 * every reply has one or more of these). */
static char *decimal(char num[32], long long v)
{
    char *p = num + 32;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return p;
}

static int header(colony_buf *out, char prefix, long long n)
{
    char num[32];
    char *p = decimal(num, n);
    return line(out, prefix, p, (size_t)(num + 32 - p));
}

int colony__resp_int(colony_buf *out, long long v)
{
    return header(out, ':', v);
}

int colony__resp_bulk(colony_buf *out, const void *data, size_t len)
{
    size_t before = out->len;
    int rc = colony_buf_reserve(out, len + 32);
    if (!rc) rc = header(out, '$', (long long)len);
    if (!rc) rc = colony_buf_append(out, data, len);
    if (!rc) rc = colony_buf_append(out, "\r\n", 2);
    if (rc) {
        out->len = before;
        if (out->data) out->data[before] = '\0';
    }
    return rc;
}

int colony__resp_bulk_str(colony_buf *out, const char *s)
{
    return colony__resp_bulk(out, s, strlen(s));
}

int colony__resp_null_bulk(colony_buf *out)
{
    return colony_buf_append(out, "$-1\r\n", 5);
}

int colony__resp_array(colony_buf *out, size_t n)
{
    return header(out, '*', (long long)n);
}

int colony__resp_null_array(colony_buf *out)
{
    return colony_buf_append(out, "*-1\r\n", 5);
}
