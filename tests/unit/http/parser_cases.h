/* Valid HTTP messages with their expected parse, shared by test_parser.c and
 * test_parser_split.c. Each is checked whole, split at every offset and byte
 * by byte. */
#ifndef COLONY_TEST_PARSER_CASES_H
#define COLONY_TEST_PARSER_CASES_H

#include <string.h>
#include "colony/error.h"
#include "colony/http_parser.h"

#define CASE_MAX_HEADERS 24

typedef struct valid_case {
    const char *name;
    const char *raw; /* head and body (and maybe a following message) */
    int is_response;
    int request_was_head;
    int version_minor;
    const char *method, *target; /* requests */
    int status;                  /* responses */
    const char *reason;
    const char *headers[CASE_MAX_HEADERS][2]; /* expected name/value pairs, NULL-terminated */
    colony_http_body_kind body_kind;
    uint64_t content_length;
    int keep_alive;
    int expect_continue;
    int upgrade;
    const char *body; /* decoded body (LENGTH or CHUNKED), NULL for none */
    size_t head_len;  /* 0: up to the first blank line after leading empty lines */
} valid_case;

static const valid_case valid_cases[] = {
    {.name = "simple GET",
     .raw = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
     .version_minor = 1,
     .method = "GET",
     .target = "/",
     .headers = {{"Host", "example.com"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "GET with query, many fields, OWS trimmed",
     .raw = "GET /api/v1/items?limit=10&sort=-name HTTP/1.1\r\n"
            "Host: localhost:8080\r\n"
            "User-Agent: curl/7.88.1\r\n"
            "Accept: */*\r\n"
            "X-Spaces: \t  padded value \t \r\n"
            "X-Empty:\r\n"
            "X-Empty-Ws:   \r\n"
            "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
            "\r\n",
     .version_minor = 1,
     .method = "GET",
     .target = "/api/v1/items?limit=10&sort=-name",
     .headers = {{"Host", "localhost:8080"},
                 {"User-Agent", "curl/7.88.1"},
                 {"Accept", "*/*"},
                 {"X-Spaces", "padded value"},
                 {"X-Empty", ""},
                 {"X-Empty-Ws", ""},
                 {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "POST with Content-Length",
     .raw = "POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            "Content-Length: 13\r\n\r\n{\"item\": 42}\n",
     .version_minor = 1,
     .method = "POST",
     .target = "/orders",
     .headers = {{"Host", "shop"}, {"Content-Type", "application/json"}, {"Content-Length", "13"}},
     .body_kind = COLONY_HTTP_BODY_LENGTH,
     .content_length = 13,
     .keep_alive = 1,
     .body = "{\"item\": 42}\n"},
    {.name = "Content-Length 0 is no body",
     .raw = "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
     .version_minor = 1,
     .method = "PUT",
     .target = "/x",
     .headers = {{"Host", "h"}, {"Content-Length", "0"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "identical Content-Length list and repeat",
     .raw = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5 ,5\r\nContent-Length: 005\r\n"
            "\r\nhello",
     .version_minor = 1,
     .method = "POST",
     .target = "/",
     .headers = {{"Host", "h"}, {"Content-Length", "5, 5 ,5"}, {"Content-Length", "005"}},
     .body_kind = COLONY_HTTP_BODY_LENGTH,
     .content_length = 5,
     .keep_alive = 1,
     .body = "hello"},
    {.name = "chunked with extensions and trailers",
     .raw = "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "Expect: 100-Continue\r\n\r\n"
            "5;name=value;flag\r\nhello\r\n"
            "6 ; q=\"quoted \\\"str\\\"; x\"\r\n world\r\n"
            "A\r\n0123456789\r\n"
            "0\r\nX-Checksum: abc\r\nX-Other: \r\n\r\n",
     .version_minor = 1,
     .method = "POST",
     .target = "/upload",
     .headers = {{"Host", "h"}, {"Transfer-Encoding", "chunked"}, {"Expect", "100-Continue"}},
     .body_kind = COLONY_HTTP_BODY_CHUNKED,
     .keep_alive = 1,
     .expect_continue = 1,
     .body = "hello world0123456789"},
    {.name = "chunked, case-insensitive TE over two fields' OWS",
     .raw = "POST / HTTP/1.1\r\nTransfer-Encoding:   CHUNKED  \r\nHost: h\r\n\r\n"
            "1\r\na\r\n00\r\n\r\n",
     .version_minor = 1,
     .method = "POST",
     .target = "/",
     .headers = {{"Transfer-Encoding", "CHUNKED"}, {"Host", "h"}},
     .body_kind = COLONY_HTTP_BODY_CHUNKED,
     .keep_alive = 1,
     .body = "a"},
    {.name = "HTTP/1.0 closes by default",
     .raw = "GET /old HTTP/1.0\r\n\r\n",
     .version_minor = 0,
     .method = "GET",
     .target = "/old",
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 0},
    {.name = "HTTP/1.0 keep-alive",
     .raw = "GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h\r\n\r\n",
     .version_minor = 0,
     .method = "GET",
     .target = "/old",
     .headers = {{"Connection", "Keep-Alive"}, {"Host", "h"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "HTTP/1.0 Expect is ignored",
     .raw = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
     .version_minor = 0,
     .method = "POST",
     .target = "/",
     .headers = {{"Expect", "100-continue"}, {"Content-Length", "2"}},
     .body_kind = COLONY_HTTP_BODY_LENGTH,
     .content_length = 2,
     .keep_alive = 0,
     .body = "ok"},
    {.name = "HTTP/1.1 Connection close in a list",
     .raw = "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n",
     .version_minor = 1,
     .method = "GET",
     .target = "/",
     .headers = {{"Host", "h"}, {"Connection", "foo, CLOSE"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 0},
    {.name = "upgrade",
     .raw = "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
            "Upgrade: websocket\r\n\r\n",
     .version_minor = 1,
     .method = "GET",
     .target = "/chat",
     .headers = {{"Host", "h"}, {"Connection", "keep-alive, Upgrade"}, {"Upgrade", "websocket"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1,
     .upgrade = 1},
    {.name = "pipelined: first head only",
     .raw = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
     .version_minor = 1,
     .method = "GET",
     .target = "/1",
     .headers = {{"Host", "h"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "absolute-form, authority-form, asterisk targets",
     .raw = "GET http://example.com:80/a/b?c=d#frag HTTP/1.1\r\nHost: example.com\r\n\r\n",
     .version_minor = 1,
     .method = "GET",
     .target = "http://example.com:80/a/b?c=d#frag",
     .headers = {{"Host", "example.com"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "CONNECT authority-form",
     .raw = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
     .version_minor = 1,
     .method = "CONNECT",
     .target = "example.com:443",
     .headers = {{"Host", "example.com:443"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "OPTIONS *, custom token method",
     .raw = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
     .version_minor = 1,
     .method = "OPTIONS",
     .target = "*",
     .headers = {{"Host", "h"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "extension method, leading empty line, obs-text value",
     .raw = "\r\nM-SEARCH! /~user/%7E HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9 \xff\r\n"
            "X-Quote: \"a, b\"; q=0.5\r\n\r\n",
     .version_minor = 1,
     .method = "M-SEARCH!",
     .target = "/~user/%7E",
     .headers = {{"Host", "h"}, {"X-Latin", "caf\xe9 \xff"}, {"X-Quote", "\"a, b\"; q=0.5"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "empty Host is allowed (one field)",
     .raw = "GET / HTTP/1.1\r\nHost:\r\n\r\n",
     .version_minor = 1,
     .method = "GET",
     .target = "/",
     .headers = {{"Host", ""}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    /* responses */
    {.name = "200 with length",
     .raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
     .is_response = 1,
     .version_minor = 1,
     .status = 200,
     .reason = "OK",
     .headers = {{"Content-Type", "text/plain"}, {"Content-Length", "5"}},
     .body_kind = COLONY_HTTP_BODY_LENGTH,
     .content_length = 5,
     .keep_alive = 1,
     .body = "hello"},
    {.name = "chunked response with trailer",
     .raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n",
     .is_response = 1,
     .version_minor = 1,
     .status = 200,
     .reason = "OK",
     .headers = {{"Transfer-Encoding", "chunked"}},
     .body_kind = COLONY_HTTP_BODY_CHUNKED,
     .keep_alive = 1,
     .body = "Wikipedia in\r\n\r\nchunks."},
    {.name = "close-delimited response",
     .raw = "HTTP/1.1 200 Fine Thanks\r\nServer: x\r\n\r\n",
     .is_response = 1,
     .version_minor = 1,
     .status = 200,
     .reason = "Fine Thanks",
     .headers = {{"Server", "x"}},
     .body_kind = COLONY_HTTP_BODY_EOF,
     .keep_alive = 0},
    {.name = "TE not ending in chunked: close-delimited",
     .raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
     .is_response = 1,
     .version_minor = 1,
     .status = 200,
     .reason = "OK",
     .headers = {{"Transfer-Encoding", "gzip"}},
     .body_kind = COLONY_HTTP_BODY_EOF,
     .keep_alive = 0},
    {.name = "204 has no body",
     .raw = "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
     .is_response = 1,
     .version_minor = 1,
     .status = 204,
     .reason = "No Content",
     .headers = {{"Content-Length", "10"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "304 and empty reason without SP",
     .raw = "HTTP/1.1 304\r\nETag: \"x\"\r\n\r\n",
     .is_response = 1,
     .version_minor = 1,
     .status = 304,
     .reason = "",
     .headers = {{"ETag", "\"x\""}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "empty reason with SP, 100 Continue",
     .raw = "HTTP/1.1 100 \r\n\r\n",
     .is_response = 1,
     .version_minor = 1,
     .status = 100,
     .reason = "",
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "response to HEAD",
     .raw = "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n",
     .is_response = 1,
     .request_was_head = 1,
     .version_minor = 1,
     .status = 200,
     .reason = "OK",
     .headers = {{"Content-Length", "12345"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 1},
    {.name = "HTTP/1.0 response keep-alive with length",
     .raw = "HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nnope",
     .is_response = 1,
     .version_minor = 0,
     .status = 404,
     .reason = "Not Found",
     .headers = {{"Connection", "keep-alive"}, {"Content-Length", "3"}},
     .body_kind = COLONY_HTTP_BODY_LENGTH,
     .content_length = 3,
     .keep_alive = 1,
     .body = "nop"},
    {.name = "response reason with obs-text and tabs",
     .raw = "HTTP/1.1 599 Weird\t\xc3\xa9 reason\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
     .is_response = 1,
     .version_minor = 1,
     .status = 599,
     .reason = "Weird\t\xc3\xa9 reason",
     .headers = {{"Content-Length", "0"}, {"Connection", "close"}},
     .body_kind = COLONY_HTTP_BODY_NONE,
     .keep_alive = 0},
};

#define VALID_CASE_COUNT (sizeof(valid_cases) / sizeof(valid_cases[0]))

/* Length of the head: leading empty lines, then up to the first blank line. */
static inline size_t case_head_len(const valid_case *c)
{
    if (c->head_len) return c->head_len;
    const char *p = c->raw;
    while (p[0] == '\r' && p[1] == '\n')
        p += 2;
    const char *e = strstr(p, "\r\n\r\n");
    return e ? (size_t)(e + 4 - c->raw) : 0;
}

/* Parses buf[0..len) as the case says (request or response). */
static inline int case_parse(const valid_case *c, const char *buf, size_t len,
                             colony_http_request *req, colony_http_response *res,
                             colony_http_header *headers, size_t max_headers)
{
    if (c->is_response)
        return colony_http_parse_response(buf, len, res, headers, max_headers, c->request_was_head,
                                          NULL);
    return colony_http_parse_request(buf, len, req, headers, max_headers, NULL);
}

static inline void assert_slice(const char *p, size_t len, const char *expected)
{
    assert_non_null(p);
    if (len != strlen(expected) || memcmp(p, expected, len) != 0)
        fail_msg("got \"%.*s\", expected \"%s\"", (int)len, p, expected);
}

/* Asserts every parsed field of a successful parse against the case. buf is
 * where the input was, so pointers must be inside it. */
static inline void case_check(const valid_case *c, const char *buf, size_t len, int rc,
                              const colony_http_request *req, const colony_http_response *res)
{
    assert_int_equal(rc, (int)case_head_len(c));
    const colony_http_message *m = c->is_response ? &res->msg : &req->msg;
    assert_int_equal(m->error, COLONY_HTTP_OK);
    assert_int_equal(m->version_minor, c->version_minor);
    if (c->is_response) {
        assert_int_equal(res->status, c->status);
        assert_slice(res->reason, res->reason_len, c->reason);
    } else {
        assert_slice(req->method, req->method_len, c->method);
        assert_true(req->method >= buf && req->method + req->method_len <= buf + len);
        assert_slice(req->target, req->target_len, c->target);
        assert_int_equal(req->expect_continue, c->expect_continue);
        assert_int_equal(req->upgrade, c->upgrade);
    }
    size_t n = 0;
    while (n < CASE_MAX_HEADERS && c->headers[n][0])
        n++;
    assert_int_equal(m->num_headers, n);
    for (size_t i = 0; i < n; i++) {
        assert_slice(m->headers[i].name, m->headers[i].name_len, c->headers[i][0]);
        assert_slice(m->headers[i].value, m->headers[i].value_len, c->headers[i][1]);
        assert_true(m->headers[i].name >= buf &&
                    m->headers[i].value + m->headers[i].value_len <= buf + (size_t)rc);
    }
    assert_int_equal(m->body_kind, c->body_kind);
    if (c->body_kind == COLONY_HTTP_BODY_LENGTH)
        assert_int_equal(m->content_length, c->content_length);
    assert_int_equal(m->keep_alive, c->keep_alive);
}

/* Messages refused with a specific error (requests unless is_response). */
typedef struct reject_case {
    const char *raw;
    colony_http_error error;
    int status;
    int is_response;
} reject_case;

#define H11 "GET / HTTP/1.1\r\nHost: h\r\n"
#define R11 "HTTP/1.1 200 OK\r\n"
#define RQ(raw, err, status)                                                                       \
    {                                                                                              \
        raw, err, status, 0                                                                        \
    }
#define RS(raw, err, status)                                                                       \
    {                                                                                              \
        raw, err, status, 1                                                                        \
    }

static const reject_case reject_cases[] = {
    RQ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400),
    RQ("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400),
    RQ("GET /\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400),
    RQ(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400),
    RQ("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400),
    RQ("GET / HTTP/1.1\nHost: h\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400), /* bare LF */
    RQ("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400),
    RQ("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400),
    RQ("GET\r\n\r\n", COLONY_HTTP_BAD_REQUEST_LINE, 400),
    RQ("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_METHOD, 400),
    RQ("GE\x01T / HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_METHOD, 400),
    RQ("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_METHOD, 400),
    RQ("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("GET SS HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("GET * HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("GET ht%tp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("CONNECT example.com:x HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_TARGET, 400),
    RQ("GET / HTTP/1.1x\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_VERSION, 400),
    RQ("GET / http/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_VERSION, 400),
    RQ("GET / HTTP/1.x\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_VERSION, 400),
    RQ("GET / HTTP/11.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BAD_VERSION, 400),
    RQ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", COLONY_HTTP_VERSION_UNSUPPORTED, 505),
    RQ("GET / HTTP/1.2\r\nHost: h\r\n\r\n", COLONY_HTTP_VERSION_UNSUPPORTED, 505),
    RQ("GET / HTTP/0.9\r\n\r\n", COLONY_HTTP_VERSION_UNSUPPORTED, 505),
    RS("HTTP/1.1 20 OK\r\n\r\n", COLONY_HTTP_BAD_STATUS_LINE, 400),
    RS("HTTP/1.1 099 Low\r\n\r\n", COLONY_HTTP_BAD_STATUS_LINE, 400),
    RS("HTTP/1.1  200 OK\r\n\r\n", COLONY_HTTP_BAD_STATUS_LINE, 400),
    RS("HTTP/1.1 200OK\r\n\r\n", COLONY_HTTP_BAD_STATUS_LINE, 400),
    RS("HTTP/1.1 2000 OK\r\n\r\n", COLONY_HTTP_BAD_STATUS_LINE, 400),
    RS("HTTP/1.1 200 O\x01K\r\n\r\n", COLONY_HTTP_BAD_STATUS_LINE, 400),
    RS("HTTP/1.1 200 OK\n\r\n", COLONY_HTTP_BAD_STATUS_LINE, 400),
    RS("HTTP/2.0 200 OK\r\n\r\n", COLONY_HTTP_VERSION_UNSUPPORTED, 505),
    RS("HTTP/1.1x200 OK\r\n\r\n", COLONY_HTTP_BAD_STATUS_LINE, 400),
    RS("HTTX/1.1 200 OK\r\n\r\n", COLONY_HTTP_BAD_VERSION, 400),
    RS("<html>\r\n", COLONY_HTTP_BAD_VERSION, 400),
    RQ(H11 "Fo\"o: x\r\n\r\n", COLONY_HTTP_BAD_HEADER_NAME, 400),
    RQ(H11 ": x\r\n\r\n", COLONY_HTTP_BAD_HEADER_NAME, 400),
    RQ(H11 "NoColon\r\n\r\n", COLONY_HTTP_BAD_HEADER_NAME, 400),
    RQ(H11 "Foo: a\r\n\n", COLONY_HTTP_BAD_HEADER_NAME, 400), /* bare LF blank line */
    RQ(H11 "Fo o: x\r\n\r\n", COLONY_HTTP_BAD_HEADER_NAME, 400),
    RQ(H11 "Foo\x01: x\r\n\r\n", COLONY_HTTP_BAD_HEADER_NAME, 400),
    RQ(H11 "Foo: a\x7f\r\n\r\n", COLONY_HTTP_BAD_HEADER_VALUE, 400),
    RQ(H11 "Foo: a\x1b[0m\r\n\r\n", COLONY_HTTP_BAD_HEADER_VALUE, 400),
    RQ(H11 "Foo: a\nBar: b\r\n\r\n", COLONY_HTTP_BAD_HEADER_VALUE, 400), /* bare LF */
    RS(R11 "Foo: a\x01\r\n\r\n", COLONY_HTTP_BAD_HEADER_VALUE, 400),
    RQ(H11 "Foo : x\r\n\r\n", COLONY_HTTP_SPACE_BEFORE_COLON, 400),
    RQ(H11 "Content-Length\t: 5\r\n\r\nhello", COLONY_HTTP_SPACE_BEFORE_COLON, 400),
    RS(R11 "Transfer-Encoding : chunked\r\n\r\n", COLONY_HTTP_SPACE_BEFORE_COLON, 400),
    RQ(H11 "Foo: a\r\n b\r\n\r\n", COLONY_HTTP_OBS_FOLD, 400),
    RQ(H11 "Foo: a\r\n\tb\r\n\r\n", COLONY_HTTP_OBS_FOLD, 400),
    RQ("GET / HTTP/1.1\r\n Host: h\r\n\r\n", COLONY_HTTP_OBS_FOLD, 400),
    RQ("GET / HTTP/1.1\rHost: h\r\n\r\n", COLONY_HTTP_BARE_CR, 400),
    RQ("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BARE_CR, 400),
    RQ("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", COLONY_HTTP_BARE_CR, 400),
    RQ(H11 "Foo: a\rb\r\n\r\n", COLONY_HTTP_BARE_CR, 400),
    RQ(H11 "Foo: a\r\r\n\r\n", COLONY_HTTP_BARE_CR, 400),
    RQ(H11 "\rX", COLONY_HTTP_BARE_CR, 400),
    RS(R11 "Foo: a\r\r\n\r\n", COLONY_HTTP_BARE_CR, 400),
    RQ(H11 "Content-Length: -1\r\n\r\n", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: +1\r\n\r\nx", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: 1 2\r\n\r\nx", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: 0x10\r\n\r\n", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length:\r\n\r\n", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: 1,\r\n\r\n", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: 1, 2\r\n\r\nx", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: 1\r\nContent-Length: 2\r\n\r\nx", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: 9223372036854775808\r\n\r\n", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: 99999999999999999999999\r\n\r\n", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RS(R11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", COLONY_HTTP_BAD_CONTENT_LENGTH, 400),
    RQ(H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", COLONY_HTTP_CL_AND_TE, 400),
    RQ(H11 "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", COLONY_HTTP_CL_AND_TE, 400),
    RS(R11 "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", COLONY_HTTP_CL_AND_TE, 400),
    RQ(H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING, 400),
    RQ(H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       COLONY_HTTP_BAD_TRANSFER_ENCODING, 400),
    RQ(H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING, 400),
    RQ(H11 "Transfer-Encoding: gzip\r\n\r\n", COLONY_HTTP_TE_NOT_IMPLEMENTED, 501),
    RQ(H11 "Transfer-Encoding: gzip, deflate\r\n\r\n", COLONY_HTTP_TE_NOT_IMPLEMENTED, 501),
    RQ(H11 "Transfer-Encoding: gzip, chunked, gzip\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING,
       400),
    RQ(H11 "Transfer-Encoding:\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING, 400),
    RQ(H11 "Transfer-Encoding: ,chunked\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING, 400),
    RQ(H11 "Transfer-Encoding: chunked;q=1\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING, 400),
    RQ(H11 "Transfer-Encoding: xchunked\r\n\r\n", COLONY_HTTP_TE_NOT_IMPLEMENTED, 501),
    RQ(H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING, 400),
    RQ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING,
       400),
    RS(R11 "Transfer-Encoding: chunked, chunked\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING, 400),
    RS("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", COLONY_HTTP_BAD_TRANSFER_ENCODING,
       400),
    RQ(H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", COLONY_HTTP_TE_NOT_IMPLEMENTED, 501),
    RQ(H11 "Transfer-Encoding: gzip;level=\"9\"\r\nTransfer-Encoding: chunked\r\n\r\n",
       COLONY_HTTP_TE_NOT_IMPLEMENTED, 501),
    RS(R11 "Transfer-Encoding: deflate, chunked\r\n\r\n", COLONY_HTTP_TE_NOT_IMPLEMENTED, 501),
    RQ(H11 "Content-Length: 1048577\r\n\r\n", COLONY_HTTP_BODY_TOO_LARGE, 413),
    RQ(H11 "Content-Length: 9223372036854775807\r\n\r\n", COLONY_HTTP_BODY_TOO_LARGE, 413),
    RS(R11 "Content-Length: 2000000\r\n\r\n", COLONY_HTTP_BODY_TOO_LARGE, 413),
    RQ("GET / HTTP/1.1\r\n\r\n", COLONY_HTTP_BAD_HOST, 400),
    RQ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", COLONY_HTTP_BAD_HOST, 400),
    RQ("GET / HTTP/1.1\r\nHost: user@evil.com\r\n\r\n", COLONY_HTTP_BAD_HOST, 400),
    RQ("GET / HTTP/1.1\r\nHost: h/x\r\n\r\n", COLONY_HTTP_BAD_HOST, 400),
    RQ("GET / HTTP/1.0\r\nHost: caf\xc3\xa9\r\n\r\n", COLONY_HTTP_BAD_HOST, 400),
    RQ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", COLONY_HTTP_BAD_HOST, 400),
    RQ("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", COLONY_HTTP_BAD_HOST, 400),
};

/* Chunked bodies refused with a specific error. */
typedef struct chunk_reject {
    const char *body;
    colony_http_error error;
} chunk_reject;

static const chunk_reject chunk_rejects[] = {
    {"x\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {"\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {"-5\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {"+5\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {"0x5\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {" 5\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {"5 \r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {"5\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {"5g\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_SIZE},
    {"5\rhello\r\n0\r\n\r\n", COLONY_HTTP_BARE_CR},
    {"5;\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;=x\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;a=\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;a=\"x\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;a b\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;a \r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;a=b \r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;a=b\x7f\r\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5;a\nhello\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_EXTENSION},
    {"5\r\nhelloX\r\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_DATA},
    {"5\r\nhello\rX0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_DATA},
    {"5\r\nhello\n0\r\n\r\n", COLONY_HTTP_BAD_CHUNK_DATA},
    {"0\r\nFoo : x\r\n\r\n", COLONY_HTTP_BAD_TRAILER},
    {"0\r\n x\r\n\r\n", COLONY_HTTP_BAD_TRAILER},
    {"0\r\nFoo: a\x01\r\n\r\n", COLONY_HTTP_BAD_TRAILER},
    {"0\r\nFoo: a\r\n b\r\n\r\n", COLONY_HTTP_BAD_TRAILER},
    {"0\r\nFoo: a\n\r\n", COLONY_HTTP_BAD_TRAILER},
    {"0\r\n: a\r\n\r\n", COLONY_HTTP_BAD_TRAILER},
    {"0\r\nFoo\r\n\r\n", COLONY_HTTP_BAD_TRAILER},
    {"0\r\n\rX", COLONY_HTTP_BAD_TRAILER},
    {"0\r\n\n", COLONY_HTTP_BAD_TRAILER},
    {"10000000000000000\r\n", COLONY_HTTP_BAD_CHUNK_SIZE}, /* 2^64: overflows */
    {"fffffff\r\n", COLONY_HTTP_BODY_TOO_LARGE},
};

#endif
