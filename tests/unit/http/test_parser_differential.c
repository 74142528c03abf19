/* Differential test: our parser against Debian's libhttp-parser (2.9) on a few
 * thousand generated requests, valid ones and mutated ones. Both parse each
 * message; accept/reject and the parsed fields (method, target, header names
 * and values, body) are compared. Every disagreement must fall into a known,
 * documented class below, each of which is checked against the input (the
 * feature that explains it must really be there); anything else fails the
 * test with the message dumped. The classes are listed in docs/http-parser.md. */
#include "test_support.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <http_parser.h>
#include "colony/error.h"
#include "colony/http_parser.h"

#define MSG_CAP    8192
#define MAX_FIELDS 64

/* ---- deterministic generator ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

typedef struct gen_buf {
    char data[MSG_CAP];
    size_t len;
} gen_buf;

static void put(gen_buf *b, const char *s, size_t n)
{
    if (b->len >= MSG_CAP) return; /* full (also tells gcc -O3 that len <= MSG_CAP) */
    if (n > MSG_CAP - b->len) n = MSG_CAP - b->len;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void puts_(gen_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(gen_buf *b, const char *fmt, ...) COLONY_PRINTF(2, 3);
static void putf(gen_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void put_random(gen_buf *b, const char *alphabet, size_t min, size_t max)
{
    size_t n = min + rng_below(max - min + 1), k = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        put(b, &alphabet[rng_below(k)], 1);
}

static const char *const known_methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
#define PATH_CHARS                                                                                 \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/%=&+!$'()*,;:@"
#define VALUE_CHARS                                                                                \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "                              \
    "-_.,;:/=\"()[]{}?@!#$%&'*+^`|~"
#define BODY_CHARS "abcdefghijklmnopqrstuvwxyz0123456789 {}\":,"

/* A valid request: random method, target, fields, framing and body. */
static void generate_valid(gen_buf *b)
{
    b->len = 0;
    if (rng_below(20) == 0) puts_(b, "\r\n");
    if (rng_below(20) == 0)
        put_random(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 3, 8); /* extension method */
    else
        puts_(b, known_methods[rng_below(6)]);
    puts_(b, " ");
    if (rng_below(10) == 0) puts_(b, "http://example.com:8080");
    puts_(b, "/");
    put_random(b, PATH_CHARS, 0, 40);
    if (rng_below(3) == 0) {
        puts_(b, "?");
        put_random(b, PATH_CHARS "?", 1, 30);
    }
    int minor = rng_below(10) == 0 ? 0 : 1;
    putf(b, " HTTP/1.%d\r\n", minor);
    size_t hosts = rng_below(20) == 0 ? rng_below(3) : 1;
    for (size_t i = 0; i < hosts; i++)
        puts_(b, "Host: example.com\r\n");
    size_t fields = rng_below(8);
    for (size_t i = 0; i < fields; i++) {
        putf(b, "X-%c%zu:", "ABCabc"[rng_below(6)], i);
        put_random(b, " \t", 0, 2);
        put_random(b, VALUE_CHARS, 0, 40);
        if (rng_below(15) == 0) puts_(b, "\xc3\xa9\xff"); /* obs-text */
        put_random(b, " \t", 0, 2);
        puts_(b, "\r\n");
    }
    size_t conn = rng_below(4);
    if (conn == 1) puts_(b, "Connection: close\r\n");
    if (conn == 2) puts_(b, "Connection: keep-alive\r\n");
    size_t framing = rng_below(3);
    if (framing == 1 || (framing == 2 && minor == 0)) {
        gen_buf body = {.len = 0};
        put_random(&body, BODY_CHARS, 0, 100);
        putf(b, "Content-Length: %zu\r\n\r\n", body.len);
        put(b, body.data, body.len);
    } else if (framing == 2) {
        puts_(b, rng_below(5) ? "Transfer-Encoding: chunked\r\n\r\n"
                              : "Transfer-Encoding: CHUNKED\r\n\r\n");
        size_t chunks = rng_below(4);
        for (size_t i = 0; i < chunks; i++) {
            gen_buf data = {.len = 0};
            put_random(&data, BODY_CHARS, 1, 40);
            putf(b, rng_below(2) ? "%zx" : "%zX", data.len);
            if (rng_below(5) == 0) puts_(b, ";name=value");
            if (rng_below(8) == 0) puts_(b, ";q=\"a b\"");
            puts_(b, "\r\n");
            put(b, data.data, data.len);
            puts_(b, "\r\n");
        }
        puts_(b, "0\r\n");
        if (rng_below(4) == 0) puts_(b, "X-Trailer: done\r\n");
        puts_(b, "\r\n");
    } else {
        puts_(b, "\r\n");
    }
}

/* Position of the n-th (random) occurrence of needle, or -1. */
static long find_random(const gen_buf *b, const char *needle)
{
    size_t nl = strlen(needle), count = 0;
    for (size_t i = 0; i + nl <= b->len; i++)
        if (memcmp(b->data + i, needle, nl) == 0) count++;
    if (!count) return -1;
    size_t pick = rng_below(count);
    for (size_t i = 0; i + nl <= b->len; i++)
        if (memcmp(b->data + i, needle, nl) == 0 && pick-- == 0) return (long)i;
    return -1;
}

static void splice_bytes(gen_buf *b, size_t at, size_t remove, const char *insert,
                         size_t insert_len)
{
    if (b->len - remove + insert_len > MSG_CAP) return;
    memmove(b->data + at + insert_len, b->data + at + remove, b->len - at - remove);
    memcpy(b->data + at, insert, insert_len);
    b->len = b->len - remove + insert_len;
}

/* One mutation aimed at a smuggling-relevant corner, or a random byte edit. */
static void mutate(gen_buf *b)
{
    long at;
    char byte;
    switch (rng_below(14)) {
    case 0: /* bare LF */
        if ((at = find_random(b, "\r\n")) >= 0) splice_bytes(b, (size_t)at, 1, "", 0);
        break;
    case 1: /* bare CR */
        if ((at = find_random(b, "\r\n")) >= 0) splice_bytes(b, (size_t)at + 1, 1, "", 0);
        break;
    case 2: /* obs-fold */
        if ((at = find_random(b, "\r\nX-")) >= 0)
            splice_bytes(b, (size_t)at + 2, 0, " folded\r\n", 9);
        break;
    case 3: /* whitespace before colon */
        if ((at = find_random(b, ":")) >= 0)
            splice_bytes(b, (size_t)at, 0, rng_below(2) ? " " : "\t", 1);
        break;
    case 4: /* Content-Length and Transfer-Encoding */
        if ((at = find_random(b, "\r\nHost")) >= 0) {
            const char *extra =
                rng_below(2) ? "Content-Length: 3\r\n" : "Transfer-Encoding: chunked\r\n";
            splice_bytes(b, (size_t)at + 2, 0, extra, strlen(extra));
        }
        break;
    case 5: /* a second Content-Length, same or different */
        if ((at = find_random(b, "\r\nContent-Length: ")) >= 0) {
            const char *dup = rng_below(2) ? "Content-Length: 7\r\n" : "Content-Length: 0\r\n";
            splice_bytes(b, (size_t)at + 2, 0, dup, 19);
        }
        break;
    case 6: /* control character in a field value */
        byte = (char)(rng_below(4) == 0 ? 0x7f : rng_below(32));
        if ((at = find_random(b, ": ")) >= 0) splice_bytes(b, (size_t)at + 2, 0, &byte, 1);
        break;
    case 7: { /* other versions */
        static const char *const versions[] = {"HTTP/1.2", "HTTP/2.0", "HTTP/1.x", "HTTP/0.9",
                                               "http/1.1"};
        if ((at = find_random(b, "HTTP/1.")) >= 0)
            splice_bytes(b, (size_t)at, 8, versions[rng_below(5)], 8);
        break;
    }
    case 8: { /* other transfer codings */
        static const char *const codings[] = {"gzip, chunked", "chunked, gzip", "identity",
                                              "chunked, chunked", "gzip"};
        const char *c = codings[rng_below(5)];
        if ((at = find_random(b, "chunked\r\n")) >= 0 || (at = find_random(b, "CHUNKED\r\n")) >= 0)
            splice_bytes(b, (size_t)at, 7, c, strlen(c));
        break;
    }
    case 9: { /* chunk-size oddities */
        static const char *const sizes[] = {" ", "\t", "x", ";", "; a", "-", "0x"};
        const char *s = sizes[rng_below(7)];
        if ((at = find_random(b, "\r\n0\r\n")) >= 0)
            splice_bytes(b, (size_t)at + 3, 0, s, strlen(s));
        break;
    }
    case 10: /* a byte outside visible ASCII in the target */
        byte = (char)(rng_below(2) ? 0x80 + rng_below(128) : rng_below(33));
        if ((at = find_random(b, " /")) >= 0) splice_bytes(b, (size_t)at + 2, 0, &byte, 1);
        break;
    case 11: /* random byte replaced */
        if (b->len) b->data[rng_below(b->len)] = (char)rng_below(256);
        break;
    case 12: /* random byte removed */
        if (b->len) splice_bytes(b, rng_below(b->len), 1, "", 0);
        break;
    default: /* random byte inserted */
        byte = (char)rng_below(256);
        splice_bytes(b, rng_below(b->len + 1), 0, &byte, 1);
        break;
    }
}

/* ---- running both parsers ---- */

enum { ACCEPT, REJECT, INCOMPLETE };

typedef struct parsed {
    int outcome;
    colony_http_error error;   /* ours */
    enum http_errno their_err; /* theirs */
    char method[32];
    char url[MSG_CAP];
    size_t url_len;
    size_t num_headers;
    char names[MAX_FIELDS][256];
    char values[MAX_FIELDS][MSG_CAP / 4];
    size_t name_len[MAX_FIELDS], value_len[MAX_FIELDS];
    char body[MSG_CAP];
    size_t body_len;
    int keep_alive;
    int in_value;  /* http-parser callbacks: last callback was a value */
    int head_done; /* http-parser reports trailer fields like header fields */
} parsed;

static void append(char *dst, size_t *len, size_t cap, const char *src, size_t n)
{
    if (*len + n > cap) n = cap - *len;
    memcpy(dst + *len, src, n);
    *len += n;
}

static void run_ours(const char *buf, size_t len, parsed *out)
{
    memset(out, 0, sizeof(*out));
    colony_http_request req;
    colony_http_header headers[MAX_FIELDS];
    int rc = colony_http_parse_request(buf, len, &req, headers, MAX_FIELDS, NULL);
    if (rc == COLONY_EAGAIN) {
        out->outcome = INCOMPLETE;
        return;
    }
    if (rc < 0) {
        out->outcome = REJECT;
        out->error = req.msg.error;
        return;
    }
    snprintf(out->method, sizeof(out->method), "%.*s", (int)req.method_len, req.method);
    append(out->url, &out->url_len, sizeof(out->url), req.target, req.target_len);
    out->num_headers = req.msg.num_headers;
    for (size_t i = 0; i < req.msg.num_headers; i++) {
        append(out->names[i], &out->name_len[i], sizeof(out->names[i]), headers[i].name,
               headers[i].name_len);
        append(out->values[i], &out->value_len[i], sizeof(out->values[i]), headers[i].value,
               headers[i].value_len);
    }
    out->keep_alive = req.msg.keep_alive;
    const char *body = buf + rc;
    size_t left = len - (size_t)rc;
    if (req.msg.body_kind == COLONY_HTTP_BODY_LENGTH) {
        if (left < req.msg.content_length) {
            out->outcome = INCOMPLETE;
            return;
        }
        append(out->body, &out->body_len, sizeof(out->body), body, req.msg.content_length);
    } else if (req.msg.body_kind == COLONY_HTTP_BODY_CHUNKED) {
        colony_http_chunked d;
        colony_http_chunked_init(&d);
        for (;;) {
            size_t consumed, data_len;
            const char *data;
            int r = colony_http_chunked_decode(&d, body, left, &consumed, &data, &data_len, NULL);
            append(out->body, &out->body_len, sizeof(out->body), data, data_len);
            body += consumed;
            left -= consumed;
            if (r == COLONY_EPROTO) {
                out->outcome = REJECT;
                out->error = d.error;
                return;
            }
            if (r == 1) break;
            if (left == 0) {
                out->outcome = INCOMPLETE;
                return;
            }
        }
    }
    out->outcome = ACCEPT;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    parsed *o = p->data;
    append(o->url, &o->url_len, sizeof(o->url), at, n);
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
    parsed *o = p->data;
    if (o->head_done) return 0; /* a trailer: we validate and drop them */
    if (o->in_value || o->num_headers == 0) {
        if (o->num_headers == MAX_FIELDS) return 1;
        o->num_headers++;
        o->in_value = 0;
    }
    size_t i = o->num_headers - 1;
    append(o->names[i], &o->name_len[i], sizeof(o->names[i]), at, n);
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
    parsed *o = p->data;
    if (o->head_done) return 0;
    if (o->num_headers == 0) return 1;
    size_t i = o->num_headers - 1;
    o->in_value = 1;
    append(o->values[i], &o->value_len[i], sizeof(o->values[i]), at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    parsed *o = p->data;
    o->keep_alive = http_should_keep_alive(p);
    o->head_done = 1;
    snprintf(o->method, sizeof(o->method), "%s", http_method_str((enum http_method)p->method));
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    parsed *o = p->data;
    append(o->body, &o->body_len, sizeof(o->body), at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    parsed *o = p->data;
    o->outcome = ACCEPT;
    return 1; /* stop: only the first message is compared */
}

static void run_theirs(const char *buf, size_t len, parsed *out)
{
    memset(out, 0, sizeof(*out));
    out->outcome = INCOMPLETE;
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_field;
    settings.on_header_value = on_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    http_parser parser;
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = out;
    http_parser_execute(&parser, &settings, buf, len);
    out->their_err = HTTP_PARSER_ERRNO(&parser);
    if (out->outcome != ACCEPT && out->their_err != HPE_OK) out->outcome = REJECT;
    /* http-parser keeps trailing whitespace in values; RFC 9110 §5.5 excludes
     * it from the value, so compare trimmed (class "trailing-ows"). */
    for (size_t i = 0; i < out->num_headers; i++)
        while (out->value_len[i] > 0 && (out->values[i][out->value_len[i] - 1] == ' ' ||
                                         out->values[i][out->value_len[i] - 1] == '\t'))
            out->value_len[i]--;
}

/* ---- features of an input, to check that a class really applies ---- */

static int has_bare_lf(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r')) return 1;
    return 0;
}

static int has_bare_cr(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] == '\r' && (i + 1 == n || b[i + 1] != '\n')) return 1;
    return 0;
}

static int has_fold(const char *b, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (b[i] == '\n' && (b[i + 1] == ' ' || b[i + 1] == '\t')) return 1;
    return 0;
}

/* A line "name<SP/HTAB>+:" */
static int has_ws_before_colon(const char *b, size_t n)
{
    for (size_t i = 1; i + 1 < n; i++)
        if (b[i] == ':' && (b[i - 1] == ' ' || b[i - 1] == '\t')) return 1;
    return 0;
}

static int has_ctl_in_line(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f) return 1;
    }
    return 0;
}

static int count_ci(const char *b, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    int count = 0;
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(b + i, needle, k) == 0) count++;
    return count;
}

static int is_http_parser_method(const char *m)
{
    for (int i = 0; i < 64; i++) {
        const char *s = http_method_str((enum http_method)i);
        if (strcmp(s, "<unknown>") == 0) break;
        if (strcmp(s, m) == 0) return 1;
    }
    return 0;
}

static int first_token_is_http_parser_method(const char *b, size_t n)
{
    while (n >= 2 && b[0] == '\r' && b[1] == '\n') {
        b += 2;
        n -= 2;
    }
    char m[32];
    size_t i = 0;
    while (i < n && i < sizeof(m) - 1 && b[i] != ' ') {
        m[i] = b[i];
        i++;
    }
    m[i] = 0;
    return is_http_parser_method(m);
}

/* ---- disagreement classes ---- */

typedef struct ctx {
    const char *buf;
    size_t len;
    const parsed *ours, *theirs;
} ctx;

static int ours_err(const ctx *c, colony_http_error e)
{
    return c->ours->outcome == REJECT && c->ours->error == e;
}

static int cls_bare_lf(const ctx *c)
{
    colony_http_error e = c->ours->error;
    return c->ours->outcome == REJECT && has_bare_lf(c->buf, c->len) &&
           (e == COLONY_HTTP_BAD_REQUEST_LINE || e == COLONY_HTTP_BAD_HEADER_NAME ||
            e == COLONY_HTTP_BAD_HEADER_VALUE || e == COLONY_HTTP_BAD_CHUNK_SIZE ||
            e == COLONY_HTTP_BAD_CHUNK_EXTENSION || e == COLONY_HTTP_BAD_CHUNK_DATA ||
            e == COLONY_HTTP_BAD_TRAILER || e == COLONY_HTTP_BAD_VERSION);
}

/* Our error names the element the CR was in (a trailer, the CRLF after chunk
 * data) or says BARE_CR; non-strict http-parser skips the LF check. */
static int cls_bare_cr(const ctx *c)
{
    return (ours_err(c, COLONY_HTTP_BARE_CR) || ours_err(c, COLONY_HTTP_BAD_TRAILER) ||
            ours_err(c, COLONY_HTTP_BAD_CHUNK_DATA)) &&
           has_bare_cr(c->buf, c->len);
}

/* A field line whose name (before the first colon) holds a non-token byte. */
static int has_bad_name(const char *b, size_t n)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const char *line = memchr(b, '\n', n);
    while (line && line + 1 < b + n) {
        const char *p = line + 1, *end = b + n;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)((eol ? eol : end) - p));
        if (colon) {
            for (const char *q = p; q < colon; q++)
                if (*q == 0 || !strchr(tchar, *q)) return 1;
        }
        line = eol;
    }
    return 0;
}

static int cls_name_chars(const ctx *c)
{
    return ours_err(c, COLONY_HTTP_BAD_HEADER_NAME) && has_bad_name(c->buf, c->len);
}

/* We check only the target's form (RFC 9112 §3.2); http-parser parses the
 * URL and refuses some absolute-form URIs we pass on (e.g. "http:/x"). */
static int cls_url_parse(const ctx *c)
{
    return c->ours->outcome != REJECT && c->theirs->outcome == REJECT &&
           c->theirs->their_err == HPE_INVALID_URL && c->ours->url_len > 0 &&
           c->ours->url[0] != '/' && memchr(c->ours->url, ':', c->ours->url_len) != NULL;
}

/* http-parser flags Transfer-Encoding on any field whose name starts with it
 * ("Transfer-Encoding-: chunked"); to us that is another field. */
static int cls_te_prefix(const ctx *c)
{
    return c->ours->outcome != REJECT && c->theirs->outcome == REJECT &&
           c->theirs->their_err == HPE_INVALID_TRANSFER_ENCODING &&
           count_ci(c->buf, c->len, "\ntransfer-encoding") >
               count_ci(c->buf, c->len, "\ntransfer-encoding:");
}

/* Targets not in one of the four forms: we refuse, http-parser's URL parser
 * accepts some (it allows e.g. a bare "*" for any method). */
static int cls_target_form(const ctx *c)
{
    if (!ours_err(c, COLONY_HTTP_BAD_TARGET)) return 0;
    const char *sp = memchr(c->buf, ' ', c->len);
    return sp && sp + 1 < c->buf + c->len && sp[1] != '/';
}

static int cls_obs_fold(const ctx *c)
{
    return (ours_err(c, COLONY_HTTP_OBS_FOLD) || ours_err(c, COLONY_HTTP_BAD_TRAILER)) &&
           has_fold(c->buf, c->len);
}

static int cls_space_before_colon(const ctx *c)
{
    return (ours_err(c, COLONY_HTTP_SPACE_BEFORE_COLON) || ours_err(c, COLONY_HTTP_BAD_TRAILER)) &&
           has_ws_before_colon(c->buf, c->len);
}

static int cls_host(const ctx *c)
{
    if (!ours_err(c, COLONY_HTTP_BAD_HOST)) return 0;
    if (count_ci(c->buf, c->len, "\nhost:") != 1) return 1;
    /* or its value is not uri-host [":" port] */
    for (size_t i = 0; i + 6 <= c->len; i++) {
        if (strncasecmp(c->buf + i, "\nhost:", 6) != 0) continue;
        for (size_t j = i + 6; j < c->len && c->buf[j] != '\r'; j++)
            if (!isalnum((unsigned char)c->buf[j]) && !strchr(" \t-._~%!$&'()*+,;=:[]", c->buf[j]))
                return 1;
        size_t v = i + 6;
        while (v < c->len && (c->buf[v] == ' ' || c->buf[v] == '\t'))
            v++;
        size_t e = v;
        while (e < c->len && c->buf[e] != '\r')
            e++;
        while (e > v && (c->buf[e - 1] == ' ' || c->buf[e - 1] == '\t'))
            e--;
        return memchr(c->buf + v, ' ', e - v) || memchr(c->buf + v, '\t', e - v);
    }
    return 0;
}

static int cls_version(const ctx *c)
{
    return ours_err(c, COLONY_HTTP_VERSION_UNSUPPORTED);
}

static int cls_cl_and_te(const ctx *c)
{
    return ours_err(c, COLONY_HTTP_CL_AND_TE);
}

/* The Transfer-Encoding fields are not exactly one "chunked" in HTTP/1.1. */
static int te_is_not_plain_chunked(const char *b, size_t n)
{
    int fields = 0, plain = 0;
    for (size_t i = 0; i + 19 <= n; i++) {
        if (b[i] != '\n' || strncasecmp(b + i + 1, "transfer-encoding:", 18) != 0) continue;
        fields++;
        size_t v = i + 19;
        while (v < n && (b[v] == ' ' || b[v] == '\t'))
            v++;
        size_t e = v;
        while (e < n && b[e] != '\r' && b[e] != '\n')
            e++;
        while (e > v && (b[e - 1] == ' ' || b[e - 1] == '\t'))
            e--;
        if (e - v == 7 && strncasecmp(b + v, "chunked", 7) == 0) plain = 1;
    }
    return fields != 1 || !plain || count_ci(b, n, " HTTP/1.0\r\n") > 0;
}

static int cls_te(const ctx *c)
{
    return (ours_err(c, COLONY_HTTP_BAD_TRANSFER_ENCODING) ||
            ours_err(c, COLONY_HTTP_TE_NOT_IMPLEMENTED)) &&
           te_is_not_plain_chunked(c->buf, c->len);
}

/* Several SP between request-line parts: http-parser skips them. */
static int cls_multiple_sp(const ctx *c)
{
    if (!ours_err(c, COLONY_HTTP_BAD_REQUEST_LINE)) return 0;
    const char *b = c->buf, *end = c->buf + c->len;
    while (end - b >= 2 && b[0] == '\r' && b[1] == '\n')
        b += 2;
    const char *eol = memchr(b, '\n', (size_t)(end - b));
    return memmem(b, (size_t)((eol ? eol : end) - b), "  ", 2) != NULL;
}

/* Non-strict http-parser does not check the CRLF after chunk data. */
static int cls_chunk_data_crlf(const ctx *c)
{
    return ours_err(c, COLONY_HTTP_BAD_CHUNK_DATA) && c->theirs->outcome != REJECT;
}

static int fields_equal(const parsed *a, const parsed *b);

/* Only keep-alive differs and a Connection value is a list with empty
 * elements or odd spacing: we parse the RFC 9110 §5.6.1 list (",close" holds
 * "close"), http-parser matches simpler shapes. */
static int cls_connection_list(const ctx *c)
{
    if (c->ours->outcome != ACCEPT || c->theirs->outcome != ACCEPT) return 0;
    parsed *alt = malloc(sizeof(*alt));
    assert_non_null(alt);
    *alt = *c->theirs;
    alt->keep_alive = c->ours->keep_alive;
    int only_keep_alive = fields_equal(c->ours, alt);
    free(alt);
    return only_keep_alive && count_ci(c->buf, c->len, "\nconnection:") > 0 &&
           (count_ci(c->buf, c->len, "\nconnection:,") > 0 ||
            count_ci(c->buf, c->len, "\nconnection: ,") > 0 ||
            count_ci(c->buf, c->len, ",close") > 0 || count_ci(c->buf, c->len, ",keep-alive") > 0);
}

static int cls_chunk_ext(const ctx *c)
{
    return ours_err(c, COLONY_HTTP_BAD_CHUNK_EXTENSION);
}

static int cls_chunk_size_ws(const ctx *c)
{
    return ours_err(c, COLONY_HTTP_BAD_CHUNK_SIZE) &&
           (count_ci(c->buf, c->len, "\r\n0 ") || count_ci(c->buf, c->len, "\r\n0\t"));
}

static int cls_target(const ctx *c)
{
    return ours_err(c, COLONY_HTTP_BAD_TARGET);
}

static int cls_ctl(const ctx *c)
{
    return (ours_err(c, COLONY_HTTP_BAD_HEADER_VALUE) || ours_err(c, COLONY_HTTP_BAD_TRAILER)) &&
           has_ctl_in_line(c->buf, c->len);
}

/* A chunk-size line holding bytes >= 0x80: http-parser's hex table maps them
 * to 0 (its table has 128 entries), so "\xe927" is size 0x27 to it. */
static int cls_chunk_size_high(const ctx *c)
{
    if (!ours_err(c, COLONY_HTTP_BAD_CHUNK_SIZE)) return 0;
    for (size_t i = 0; i + 1 < c->len; i++) {
        if (c->buf[i] != '\n') continue;
        size_t j = i + 1;
        int high = 0;
        while (j < c->len &&
               (isxdigit((unsigned char)c->buf[j]) || (unsigned char)c->buf[j] >= 0x80))
            high |= (unsigned char)c->buf[j++] >= 0x80;
        if (high) return 1;
    }
    return 0;
}

/* The request line does not carry " HTTP/" (with those letters): http-parser
 * in its non-strict build does not check them. */
static int cls_version_letters(const ctx *c)
{
    if (!(ours_err(c, COLONY_HTTP_BAD_VERSION) || ours_err(c, COLONY_HTTP_BAD_REQUEST_LINE)))
        return 0;
    const char *eol = memchr(c->buf + 2, '\n', c->len - 2);
    size_t line = eol ? (size_t)(eol - c->buf) : c->len;
    return memmem(c->buf, line, " HTTP/", 6) == NULL;
}

static int cls_method_list(const ctx *c)
{
    return c->theirs->outcome == REJECT && c->theirs->their_err == HPE_INVALID_METHOD &&
           c->ours->outcome != REJECT && !first_token_is_http_parser_method(c->buf, c->len);
}

static int cls_identical_cl(const ctx *c)
{
    return c->theirs->outcome == REJECT &&
           (c->theirs->their_err == HPE_UNEXPECTED_CONTENT_LENGTH ||
            c->theirs->their_err == HPE_INVALID_CONTENT_LENGTH) &&
           c->ours->outcome != REJECT && count_ci(c->buf, c->len, "\ncontent-length:") > 1;
}

typedef struct disagreement_class {
    const char *name;
    const char *why;
    int (*applies)(const ctx *c);
    size_t seen;
} disagreement_class;

static disagreement_class classes[] = {
    {"bare-lf",
     "http-parser accepts LF line endings; we refuse them (RFC 9112 §2.2 MAY, a "
     "smuggling vector when proxies disagree)",
     cls_bare_lf, 0},
    {"bare-cr", "a CR not followed by LF: we refuse (RFC 9112 §2.2 MUST)", cls_bare_cr, 0},
    {"obs-fold", "http-parser unfolds continuation lines; we refuse them (RFC 9112 §5.2)",
     cls_obs_fold, 0},
    {"space-before-colon", "whitespace between name and colon: we refuse (RFC 9112 §5.1 MUST)",
     cls_space_before_colon, 0},
    {"host",
     "HTTP/1.1 without exactly one Host, or a Host that is not uri-host[:port]: we refuse "
     "(RFC 9112 §3.2 MUST); http-parser does not look",
     cls_host, 0},
    {"version", "http-parser accepts any HTTP/d.d; we answer 505 for other than 1.0/1.1",
     cls_version, 0},
    {"cl-and-te", "both Content-Length and Transfer-Encoding: we refuse outright", cls_cl_and_te,
     0},
    {"transfer-coding",
     "codings other than a single final chunked, or TE in HTTP/1.0: we refuse "
     "(400/501)",
     cls_te, 0},
    {"request-line-spaces",
     "http-parser skips repeated SP in the request line; RFC 9112 §3 has "
     "exactly one",
     cls_multiple_sp, 0},
    {"chunk-data-crlf", "non-strict http-parser does not check the CRLF after chunk data",
     cls_chunk_data_crlf, 0},
    {"connection-list",
     "keep-alive differs on Connection lists with empty elements; we parse the "
     "RFC 9110 list",
     cls_connection_list, 0},
    {"chunk-extension", "http-parser skips chunk extensions unchecked; we validate their syntax",
     cls_chunk_ext, 0},
    {"chunk-size-ws", "http-parser allows whitespace after the chunk size; we refuse it",
     cls_chunk_size_ws, 0},
    {"chunk-size-high-bytes",
     "http-parser reads bytes >= 0x80 in a chunk size as hex 0; we refuse "
     "them",
     cls_chunk_size_high, 0},
    {"version-letters",
     "http-parser (non-strict build) does not check the letters of \"HTTP/\"; "
     "we do",
     cls_version_letters, 0},
    {"field-name-chars",
     "non-strict http-parser accepts non-token bytes in field names; we "
     "refuse them",
     cls_name_chars, 0},
    {"absolute-form-url",
     "http-parser's URL parser refuses some absolute-form targets we pass "
     "on unparsed",
     cls_url_parse, 0},
    {"te-name-prefix",
     "http-parser treats \"Transfer-Encoding-\" and similar names as "
     "Transfer-Encoding",
     cls_te_prefix, 0},
    {"target-form", "targets outside the four RFC 9112 forms: we refuse", cls_target_form, 0},
    {"target-bytes", "request-target bytes outside visible ASCII: we refuse them all", cls_target,
     0},
    {"control-chars", "control characters in a field value: we refuse all (RFC 9110 §5.5)", cls_ctl,
     0},
    {"method-list",
     "http-parser knows only a fixed list of methods; any token is a method "
     "(RFC 9110 §9.1)",
     cls_method_list, 0},
    {"identical-content-length",
     "repeated identical Content-Length: http-parser refuses, RFC "
     "9110 §8.6 lets us accept",
     cls_identical_cl, 0},
};
#define CLASS_COUNT (sizeof(classes) / sizeof(classes[0]))
static size_t connection_list_class;

static int fields_equal(const parsed *a, const parsed *b)
{
    if (strcmp(a->method, b->method) != 0) return 0;
    if (a->url_len != b->url_len || memcmp(a->url, b->url, a->url_len) != 0) return 0;
    if (a->num_headers != b->num_headers) return 0;
    for (size_t i = 0; i < a->num_headers; i++) {
        if (a->name_len[i] != b->name_len[i] ||
            memcmp(a->names[i], b->names[i], a->name_len[i]) != 0)
            return 0;
        if (a->value_len[i] != b->value_len[i] ||
            memcmp(a->values[i], b->values[i], a->value_len[i]) != 0)
            return 0;
    }
    if (a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0) return 0;
    return a->keep_alive == b->keep_alive;
}

static void dump(const char *what, const char *buf, size_t len, const parsed *ours,
                 const parsed *theirs)
{
    fprintf(stderr, "%s: ours outcome %d error %d (%s); http-parser outcome %d errno %s\n", what,
            ours->outcome, ours->error, colony_http_error_message(ours->error), theirs->outcome,
            http_errno_name(theirs->their_err));
    fputc('"', stderr);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\r')
            fputs("\\r", stderr);
        else if (ch == '\n')
            fputs("\\n", stderr);
        else if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            fprintf(stderr, "\\x%02x", ch);
        else
            fputc(ch, stderr);
    }
    fputs("\"\n", stderr);
}

static parsed ours_result, theirs_result;

static void differential(void **state)
{
    (void)state;
    /* COLONY_DIFF_SEED explores other seeds; the default keeps CI repeatable. */
    const char *seed = getenv("COLONY_DIFF_SEED");
    rng_state = seed ? strtoull(seed, NULL, 0) : 0xc010a7e5eedULL;
    const size_t total = 10000;
    size_t both_accept = 0, both_refuse = 0, unexplained = 0, mutated = 0;
    static gen_buf msg;
    for (size_t k = 0; k < CLASS_COUNT; k++)
        if (classes[k].applies == cls_connection_list) connection_list_class = k;
    for (size_t n = 0; n < total; n++) {
        generate_valid(&msg);
        if (rng_below(10) < 4) {
            mutate(&msg);
            mutated++;
        }
        char *buf = colony_test_guarded_copy(msg.data, msg.len);
        run_ours(buf, msg.len, &ours_result);
        run_theirs(buf, msg.len, &theirs_result);
        ctx c = {buf, msg.len, &ours_result, &theirs_result};
        if (ours_result.outcome == theirs_result.outcome) {
            if (ours_result.outcome != ACCEPT) {
                both_refuse++;
            } else if (fields_equal(&ours_result, &theirs_result)) {
                both_accept++;
            } else if (cls_connection_list(&c)) {
                classes[connection_list_class].seen++;
            } else {
                dump("both accept, fields differ", buf, msg.len, &ours_result, &theirs_result);
                unexplained++;
            }
        } else {
            size_t k = 0;
            while (k < CLASS_COUNT && !classes[k].applies(&c))
                k++;
            if (k < CLASS_COUNT) {
                classes[k].seen++;
            } else {
                dump("unexplained disagreement", buf, msg.len, &ours_result, &theirs_result);
                unexplained++;
            }
        }
        colony_test_guarded_free(buf, msg.len);
    }
    printf("differential: %zu messages (%zu mutated): %zu accepted by both with equal fields, "
           "%zu refused or incomplete in both\n",
           total, mutated, both_accept, both_refuse);
    for (size_t k = 0; k < CLASS_COUNT; k++)
        printf("  %-26s %5zu  %s\n", classes[k].name, classes[k].seen, classes[k].why);
    assert_int_equal(unexplained, 0);
    /* The generator must exercise both parsers, not just produce garbage. */
    assert_true(both_accept > total / 3);
    assert_true(both_refuse > total / 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
