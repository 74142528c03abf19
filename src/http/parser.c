/* Strict HTTP/1.1 head parser (RFC 9112). Allocates nothing; names, values,
 * method and target point into the caller's buffer. A call parses from the
 * start of the buffer in one pass over the bytes; when the head is not complete
 * it returns COLONY_EAGAIN and the caller calls again with more bytes.
 *
 * Every scan is bounded by the applicable limit (request line, header
 * section), so an over-long head is refused as soon as the limit is passed,
 * without waiting for a line end that may never come. Errors are found left to
 * right, so a prefix of the input never reports an error the whole input would
 * not report.
 *
 * Choices where the RFC allows leniency (see docs/http-parser.md):
 * - Bare LF line endings are refused (RFC 9112 §2.2 lets a recipient accept
 *   them; front ends that do and back ends that don't disagree about where a
 *   line ends, which is a smuggling vector). A bare LF is reported as the
 *   error of the element it ends (request line, header name or value).
 * - A request target must be visible ASCII (0x21-0x7E); bytes >= 0x80 are
 *   refused (RFC 3986 needs them percent-encoded). Its form is checked
 *   (origin, absolute, authority for CONNECT, "*" for OPTIONS), not its
 *   URI syntax in detail.
 * - Up to MAX_LEADING_EMPTY_LINES empty lines before a request line are
 *   skipped (RFC 9112 §2.2 SHOULD ignore at least one).
 * - "HTTP/1.1 200\r\n" (status line without the SP before an empty reason) is
 *   accepted: common in the wild and unambiguous.
 * - A status line over max_request_line is HEADERS_TOO_LARGE (there is no URI). */
#include <limits.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "colony/error.h"
#include "http/parser_internal.h"

#define IS(c, cls)              COLONY__HTTP_IS(c, cls)
#define MAX_LEADING_EMPTY_LINES 4

/* Where a scan stopped: bound is where it had to stop looking (the input's end
 * or a limit), limit_error what to report if that bound is a limit and more
 * bytes would be needed. */
typedef struct scan_bound {
    const char *end;
    colony_http_error limit_error;
} scan_bound;

/* The scan ran out of bytes at b->end: a limit was passed if there is input
 * beyond it, otherwise the caller must wait for more. */
static int need_more(const scan_bound *b, const char *input_end, colony_http_message *msg)
{
    if (b->end < input_end) {
        msg->error = b->limit_error;
        return COLONY_EPROTO;
    }
    return COLONY_EAGAIN;
}

static int fail(colony_http_message *msg, colony_http_error err)
{
    msg->error = err;
    return COLONY_EPROTO;
}

/* A bound `max` bytes after p, or the outer bound if that comes first. */
static scan_bound bound_after(const char *p, size_t max, colony_http_error err,
                              const scan_bound *outer)
{
    scan_bound b = *outer;
    if (max < (size_t)(outer->end - p)) {
        b.end = p + max;
        b.limit_error = err;
    }
    return b;
}

static const char *scan_class(const char *p, const char *end, uint8_t cls)
{
    while (end - p >= 4) {
        if (!IS(p[0], cls)) return p;
        if (!IS(p[1], cls)) return p + 1;
        if (!IS(p[2], cls)) return p + 2;
        if (!IS(p[3], cls)) return p + 3;
        p += 4;
    }
    while (p < end && IS(*p, cls))
        p++;
    return p;
}

#ifdef __SSE2__
/* 16 bytes at a time where a class is a simple byte range test (field values,
 * targets): the first byte for which `bad` is set ends the run. Only whole
 * 16-byte blocks inside [p, end) are loaded; the tail goes through the table. */
static inline const char *scan_value_sse2(const char *p, const char *end)
{
    const __m128i ctl_max = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8(0x09),
                  del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, ctl_max), x); /* x <= 0x1f */
        __m128i bad =
            _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, tab), ctl), _mm_cmpeq_epi8(x, del));
        int mask = _mm_movemask_epi8(bad);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
    return scan_class(p, end, COLONY__CC_FIELD);
}

static inline const char *scan_target_sse2(const char *p, const char *end)
{
    const __m128i sp = _mm_set1_epi8(0x20), tilde = _mm_set1_epi8(0x7e);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(x, sp), x);     /* x <= 0x20 */
        __m128i high = _mm_cmpeq_epi8(_mm_max_epu8(x, tilde), x); /* x >= 0x7e */
        __m128i bad = _mm_or_si128(low, _mm_andnot_si128(_mm_cmpeq_epi8(x, tilde), high));
        int mask = _mm_movemask_epi8(bad);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
    return scan_class(p, end, COLONY__CC_TARGET);
}
#define SCAN_VALUE(p, end)  scan_value_sse2(p, end)
#define SCAN_TARGET(p, end) scan_target_sse2(p, end)
#else
#define SCAN_VALUE(p, end)  scan_class(p, end, COLONY__CC_FIELD)
#define SCAN_TARGET(p, end) scan_class(p, end, COLONY__CC_TARGET)
#endif

/* p is at a CR (or LF) that ended an element early: a CR not followed by LF is
 * a bare CR; otherwise the element itself is malformed (`err`). Returns
 * COLONY_EAGAIN when the byte after the CR has not arrived. */
static int line_end_error(const char *p, const scan_bound *b, const char *input_end,
                          colony_http_message *msg, colony_http_error err)
{
    if (*p == '\r') {
        if (p + 1 == b->end) return need_more(b, input_end, msg);
        if (p[1] != '\n') return fail(msg, COLONY_HTTP_BARE_CR);
    }
    return fail(msg, err);
}

/* "HTTP/1.0" or "HTTP/1.1" at v (8 bytes available). */
static colony_http_error parse_version(const char *v, int *minor)
{
    if (memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '1' || v[7] == '0')) {
        *minor = v[7] - '0';
        return COLONY_HTTP_OK;
    }
    if (memcmp(v, "HTTP/", 5) == 0 && IS(v[5], COLONY__CC_DIGIT) && v[6] == '.' &&
        IS(v[7], COLONY__CC_DIGIT))
        return COLONY_HTTP_VERSION_UNSUPPORTED;
    return COLONY_HTTP_BAD_VERSION;
}

/* request-target forms (RFC 9112 §3.2): origin-form starts with "/" (checked
 * by the caller, the common case); otherwise asterisk-form "*" for OPTIONS,
 * authority-form host:port for CONNECT, or absolute-form scheme ":" ...
 * Anything else is refused rather than handed to a router to guess at. */
static int target_form_ok(const char *method, size_t method_len, const char *t, size_t len)
{
    if (len == 1 && t[0] == '*') return method_len == 7 && memcmp(method, "OPTIONS", 7) == 0;
    if (method_len == 7 && memcmp(method, "CONNECT", 7) == 0) {
        const char *colon = memrchr(t, ':', len);
        if (!colon || colon == t || colon + 1 == t + len) return 0;
        for (const char *p = colon + 1; p < t + len; p++)
            if (!IS(*p, COLONY__CC_DIGIT)) return 0;
        return 1;
    }
    size_t i = 0;
    unsigned char c = (unsigned char)t[0];
    if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return 0;
    for (i = 1; i < len; i++) {
        c = (unsigned char)t[i];
        if (c == ':') return 1;
        if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || IS(c, COLONY__CC_DIGIT) || c == '+' ||
              c == '-' || c == '.'))
            return 0;
    }
    return 0;
}

/* Parses header fields from *pp up to and including the blank line. Returns 0
 * with *pp after the blank line and *count fields stored, or an error code. */
static int parse_fields(const char **pp, const scan_bound *b, const char *input_end,
                        colony_http_header *headers, size_t cap, size_t *count,
                        colony_http_message *msg)
{
    const char *p = *pp;
    const char *end = b->end;
    size_t n = 0;
    for (;;) {
        if (p == end) return need_more(b, input_end, msg);
        if (*p == '\r') {
            if (p + 1 == end) return need_more(b, input_end, msg);
            if (p[1] != '\n') return fail(msg, COLONY_HTTP_BARE_CR);
            p += 2;
            break;
        }
        if (IS(*p, COLONY__CC_WS)) return fail(msg, COLONY_HTTP_OBS_FOLD);
        const char *name = p;
        p = scan_class(p, end, COLONY__CC_TCHAR);
        if (p == end) return need_more(b, input_end, msg);
        if (*p != ':') {
            if (p > name && IS(*p, COLONY__CC_WS)) {
                const char *q = p;
                while (q < end && IS(*q, COLONY__CC_WS))
                    q++;
                if (q == end) return need_more(b, input_end, msg);
                if (*q == ':') return fail(msg, COLONY_HTTP_SPACE_BEFORE_COLON);
            }
            return fail(msg, COLONY_HTTP_BAD_HEADER_NAME);
        }
        if (p == name) return fail(msg, COLONY_HTTP_BAD_HEADER_NAME);
        if (n == cap) return fail(msg, COLONY_HTTP_TOO_MANY_HEADERS);
        size_t name_len = (size_t)(p - name);
        p++;
        while (p < end && IS(*p, COLONY__CC_WS))
            p++;
        const char *value = p;
        p = SCAN_VALUE(p, end);
        if (p == end) return need_more(b, input_end, msg);
        if (*p != '\r') return fail(msg, COLONY_HTTP_BAD_HEADER_VALUE); /* CTL, NUL, DEL, LF */
        if (p + 1 == end) return need_more(b, input_end, msg);
        if (p[1] != '\n') return fail(msg, COLONY_HTTP_BARE_CR);
        const char *value_end = p;
        while (value_end > value && IS(value_end[-1], COLONY__CC_WS))
            value_end--;
        headers[n].name = name;
        headers[n].name_len = name_len;
        headers[n].value = value;
        headers[n].value_len = (size_t)(value_end - value);
        n++;
        p += 2;
    }
    *pp = p;
    *count = n;
    return 0;
}

static void message_reset(colony_http_message *msg, colony_http_header *headers)
{
    msg->version_minor = 1;
    msg->headers = headers;
    msg->num_headers = 0;
    msg->body_kind = COLONY_HTTP_BODY_NONE;
    msg->content_length = 0;
    msg->keep_alive = 0;
    msg->error = COLONY_HTTP_OK;
}

static scan_bound head_bound(const char *buf, size_t len, const colony_http_limits *lim)
{
    scan_bound b = {buf + len, COLONY_HTTP_HEADERS_TOO_LARGE};
    size_t max = lim->max_header_bytes < INT_MAX ? lim->max_header_bytes : INT_MAX; /* fits rc */
    if (len > max) b.end = buf + max;
    return b;
}

/* Request framing and connection semantics (RFC 9112 §6, §9.3, RFC 9110 §7.2). */
static int finish_request(colony_http_request *req, const colony_http_limits *lim)
{
    colony_http_message *msg = &req->msg;
    colony__http_fields f = {0};
    colony_http_error err = colony__http_scan_fields(msg->headers, msg->num_headers, &f);
    if (err) return fail(msg, err);
    if (f.has_transfer_encoding && f.has_content_length) return fail(msg, COLONY_HTTP_CL_AND_TE);
    if (f.has_transfer_encoding) {
        /* HTTP/1.0 has no chunked coding: the framing would be guesswork. chunked
         * twice, or present but not final, is refused as unframeable (RFC 9112
         * §6.3). A coding we do not implement (gzip, with or without a final
         * chunked) is 501 (§6.1); either way the connection closes. */
        if (msg->version_minor == 0 || f.te_malformed || f.te_chunked_count > 1 ||
            (f.te_chunked_count == 1 && !f.te_chunked_last))
            return fail(msg, COLONY_HTTP_BAD_TRANSFER_ENCODING);
        if (f.te_codings > f.te_chunked_count) return fail(msg, COLONY_HTTP_TE_NOT_IMPLEMENTED);
        msg->body_kind = COLONY_HTTP_BODY_CHUNKED;
    } else if (f.has_content_length) {
        if (f.content_length > lim->max_body) return fail(msg, COLONY_HTTP_BODY_TOO_LARGE);
        msg->content_length = f.content_length;
        msg->body_kind = f.content_length ? COLONY_HTTP_BODY_LENGTH : COLONY_HTTP_BODY_NONE;
    }
    if (f.host_count > 1 || f.host_invalid || (msg->version_minor == 1 && f.host_count != 1))
        return fail(msg, COLONY_HTTP_BAD_HOST);
    if (msg->version_minor == 1)
        msg->keep_alive = !f.connection_close;
    else
        msg->keep_alive = f.connection_keep_alive && !f.connection_close;
    req->expect_continue = msg->version_minor == 1 && f.expect_continue;
    req->upgrade = f.connection_upgrade && f.has_upgrade;
    return 0;
}

int colony_http_parse_request(const char *buf, size_t len, colony_http_request *req,
                              colony_http_header *headers, size_t max_headers,
                              const colony_http_limits *limits)
{
    colony_http_limits lim;
    colony__http_effective_limits(&lim, limits);
    colony_http_message *msg = &req->msg;
    message_reset(msg, headers);
    req->method = req->target = NULL;
    req->method_len = req->target_len = 0;
    req->expect_continue = req->upgrade = 0;

    const char *input_end = buf + len;
    scan_bound head = head_bound(buf, len, &lim);
    const char *p = buf;

    for (int empty = 0;; empty++) { /* empty lines before the request line */
        if (p == head.end) return need_more(&head, input_end, msg);
        if (*p != '\r') break;
        if (p + 1 == head.end) return need_more(&head, input_end, msg);
        if (p[1] != '\n') return fail(msg, COLONY_HTTP_BARE_CR);
        if (empty == MAX_LEADING_EMPTY_LINES) return fail(msg, COLONY_HTTP_BAD_REQUEST_LINE);
        p += 2;
    }

    /* request-line = method SP request-target SP HTTP-version CRLF; the line's
     * content may be max_request_line bytes, plus its CRLF. */
    size_t max_line = lim.max_request_line;
    scan_bound line = bound_after(p, max_line <= SIZE_MAX - 2 ? max_line + 2 : SIZE_MAX,
                                  COLONY_HTTP_URI_TOO_LONG, &head);
    const char *method = p;
    p = scan_class(p, line.end, COLONY__CC_TCHAR);
    if (p == line.end) return need_more(&line, input_end, msg);
    if (*p != ' ' || p == method) {
        if (*p == '\r' || *p == '\n' || *p == ' ')
            return line_end_error(p, &line, input_end, msg, COLONY_HTTP_BAD_REQUEST_LINE);
        return fail(msg, COLONY_HTTP_BAD_METHOD);
    }
    req->method = method;
    req->method_len = (size_t)(p - method);
    const char *target = ++p;
    p = SCAN_TARGET(p, line.end);
    if (p == line.end) return need_more(&line, input_end, msg);
    if (*p != ' ' || p == target) {
        if (*p == '\r' || *p == '\n' || *p == ' ')
            return line_end_error(p, &line, input_end, msg, COLONY_HTTP_BAD_REQUEST_LINE);
        return fail(msg, COLONY_HTTP_BAD_TARGET);
    }
    req->target = target;
    req->target_len = (size_t)(p - target);
    if (*target != '/' && !target_form_ok(method, req->method_len, target, req->target_len))
        return fail(msg, COLONY_HTTP_BAD_TARGET);
    p++;
    if (p < line.end && *p == ' ') return fail(msg, COLONY_HTTP_BAD_REQUEST_LINE);
    if (line.end - p < 10) return need_more(&line, input_end, msg); /* "HTTP/1.1\r\n" */
    colony_http_error err = parse_version(p, &msg->version_minor);
    if (err) return fail(msg, err);
    p += 8;
    if (*p != '\r') {
        return fail(msg, IS(*p, COLONY__CC_TCHAR) ? COLONY_HTTP_BAD_VERSION
                                                  : COLONY_HTTP_BAD_REQUEST_LINE);
    }
    if (p[1] != '\n') return fail(msg, COLONY_HTTP_BARE_CR);
    p += 2;

    size_t cap = max_headers < lim.max_headers ? max_headers : lim.max_headers;
    int rc = parse_fields(&p, &head, input_end, headers, cap, &msg->num_headers, msg);
    if (rc) return rc;
    rc = finish_request(req, &lim);
    if (rc) return rc;
    return (int)(p - buf);
}

/* Response framing (RFC 9112 §6.3): no body after HEAD, 1xx, 204, 304;
 * chunked when chunked is the final coding; close-delimited when another
 * coding is final or nothing frames the body. */
static int finish_response(colony_http_response *res, int request_was_head,
                           const colony_http_limits *lim)
{
    colony_http_message *msg = &res->msg;
    colony__http_fields f = {0};
    colony_http_error err = colony__http_scan_fields(msg->headers, msg->num_headers, &f);
    if (err) return fail(msg, err);
    if (f.has_transfer_encoding && f.has_content_length) return fail(msg, COLONY_HTTP_CL_AND_TE);
    colony_http_body_kind kind = COLONY_HTTP_BODY_EOF;
    if (f.has_transfer_encoding) {
        if (msg->version_minor == 0 || f.te_malformed || f.te_chunked_count > 1)
            return fail(msg, COLONY_HTTP_BAD_TRANSFER_ENCODING);
        if (f.te_chunked_last) {
            /* We never send TE, so a server has no business applying other codings. */
            if (f.te_codings > 1) return fail(msg, COLONY_HTTP_TE_NOT_IMPLEMENTED);
            kind = COLONY_HTTP_BODY_CHUNKED;
        }
    } else if (f.has_content_length) {
        kind = f.content_length ? COLONY_HTTP_BODY_LENGTH : COLONY_HTTP_BODY_NONE;
    }
    int status = res->status;
    if (request_was_head || status < 200 || status == 204 || status == 304)
        kind = COLONY_HTTP_BODY_NONE;
    if (kind == COLONY_HTTP_BODY_LENGTH) {
        if (f.content_length > lim->max_body) return fail(msg, COLONY_HTTP_BODY_TOO_LARGE);
        msg->content_length = f.content_length;
    }
    msg->body_kind = kind;
    if (msg->version_minor == 1)
        msg->keep_alive = !f.connection_close;
    else
        msg->keep_alive = f.connection_keep_alive && !f.connection_close;
    if (kind == COLONY_HTTP_BODY_EOF) msg->keep_alive = 0;
    return 0;
}

int colony_http_parse_response(const char *buf, size_t len, colony_http_response *res,
                               colony_http_header *headers, size_t max_headers,
                               int request_was_head, const colony_http_limits *limits)
{
    colony_http_limits lim;
    colony__http_effective_limits(&lim, limits);
    colony_http_message *msg = &res->msg;
    message_reset(msg, headers);
    res->status = 0;
    res->reason = NULL;
    res->reason_len = 0;

    const char *input_end = buf + len;
    scan_bound head = head_bound(buf, len, &lim);
    size_t max_line = lim.max_request_line;
    scan_bound line = bound_after(buf, max_line <= SIZE_MAX - 2 ? max_line + 2 : SIZE_MAX,
                                  COLONY_HTTP_HEADERS_TOO_LARGE, &head);
    const char *p = buf;

    /* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF */
    size_t avail = (size_t)(line.end - p);
    if (memcmp(p, "HTTP/", avail < 5 ? avail : 5) != 0) return fail(msg, COLONY_HTTP_BAD_VERSION);
    if (avail < 14) { /* "HTTP/1.1 200\r\n" */
        if (line.end < input_end) return fail(msg, line.limit_error);
        return COLONY_EAGAIN;
    }
    colony_http_error err = parse_version(p, &msg->version_minor);
    if (err) return fail(msg, err);
    p += 8;
    if (p[0] != ' ' || !IS(p[1], COLONY__CC_DIGIT) || !IS(p[2], COLONY__CC_DIGIT) ||
        !IS(p[3], COLONY__CC_DIGIT))
        return fail(msg, COLONY_HTTP_BAD_STATUS_LINE);
    res->status = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    if (res->status < 100) return fail(msg, COLONY_HTTP_BAD_STATUS_LINE);
    p += 4;
    if (*p == ' ') {
        const char *reason = ++p;
        p = scan_class(p, line.end, COLONY__CC_FIELD);
        if (p == line.end) return need_more(&line, input_end, msg);
        res->reason = reason;
        res->reason_len = (size_t)(p - reason);
    } else {
        res->reason = p;
    }
    if (*p != '\r') return fail(msg, COLONY_HTTP_BAD_STATUS_LINE);
    if (p + 1 == line.end) return need_more(&line, input_end, msg);
    if (p[1] != '\n') return fail(msg, COLONY_HTTP_BARE_CR);
    p += 2;

    size_t cap = max_headers < lim.max_headers ? max_headers : lim.max_headers;
    int rc = parse_fields(&p, &head, input_end, headers, cap, &msg->num_headers, msg);
    if (rc) return rc;
    rc = finish_response(res, request_was_head, &lim);
    if (rc) return rc;
    return (int)(p - buf);
}
