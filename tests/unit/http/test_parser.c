/* HTTP parser: a corpus of valid messages with exact field assertions, every
 * rejection class with a concrete message, limits, and the chunked decoder. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/http_parser.h"
#include "parser_cases.h"

/* Decodes a whole chunked body given in one piece; returns the final result
 * (1 complete, 0 incomplete, COLONY_EPROTO) and the data in out. */
static int decode_all(colony_http_chunked *d, const char *in, size_t len, char *out, size_t out_cap,
                      size_t *out_len, const colony_http_limits *lim)
{
    colony_http_chunked_init(d);
    *out_len = 0;
    for (;;) {
        size_t consumed, data_len;
        const char *data;
        int rc = colony_http_chunked_decode(d, in, len, &consumed, &data, &data_len, lim);
        assert_true(consumed <= len);
        if (data_len) {
            assert_true(data >= in && data + data_len <= in + len);
            assert_true(*out_len + data_len <= out_cap);
            memcpy(out + *out_len, data, data_len);
            *out_len += data_len;
        }
        in += consumed;
        len -= consumed;
        if (rc != 0 || (consumed == 0 && data_len == 0)) return rc;
    }
}

static void valid_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < VALID_CASE_COUNT; i++) {
        const valid_case *c = &valid_cases[i];
        size_t len = strlen(c->raw);
        char *buf = colony_test_guarded_copy(c->raw, len);
        colony_http_request req;
        colony_http_response res;
        colony_http_header headers[CASE_MAX_HEADERS];
        int rc = case_parse(c, buf, len, &req, &res, headers, CASE_MAX_HEADERS);
        if (rc < 0)
            fail_msg("%s: rc %d error %d", c->name, rc,
                     c->is_response ? res.msg.error : req.msg.error);
        case_check(c, buf, len, rc, &req, &res);
        if (c->body_kind == COLONY_HTTP_BODY_CHUNKED) {
            colony_http_chunked d;
            char out[256];
            size_t out_len;
            assert_int_equal(
                decode_all(&d, buf + rc, len - (size_t)rc, out, sizeof(out), &out_len, NULL), 1);
            assert_int_equal(out_len, strlen(c->body));
            assert_memory_equal(out, c->body, out_len);
        } else if (c->body_kind == COLONY_HTTP_BODY_LENGTH) {
            assert_memory_equal(buf + rc, c->body, c->content_length);
        }
        colony_test_guarded_free(buf, len);
    }
}

static void pipelined_second_request(void **state)
{
    (void)state;
    const char *raw = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\n"
                      "Content-Length: 2\r\n\r\nhi";
    colony_http_request req;
    colony_http_header headers[8];
    int first = colony_http_parse_request(raw, strlen(raw), &req, headers, 8, NULL);
    assert_int_equal(first, 28);
    int second =
        colony_http_parse_request(raw + first, strlen(raw) - (size_t)first, &req, headers, 8, NULL);
    assert_int_equal(second, (int)strlen(raw) - first - 2);
    assert_int_equal(req.method_len, 4);
    assert_int_equal(req.msg.body_kind, COLONY_HTTP_BODY_LENGTH);
    assert_int_equal(req.msg.content_length, 2);
}

static void rejections(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]); i++) {
        const reject_case *c = &reject_cases[i];
        size_t len = strlen(c->raw);
        char *buf = colony_test_guarded_copy(c->raw, len);
        colony_http_request req;
        colony_http_response res;
        colony_http_header headers[16];
        int rc;
        colony_http_error err;
        if (c->is_response) {
            rc = colony_http_parse_response(buf, len, &res, headers, 16, 0, NULL);
            err = res.msg.error;
        } else {
            rc = colony_http_parse_request(buf, len, &req, headers, 16, NULL);
            err = req.msg.error;
        }
        if (rc != COLONY_EPROTO || err != c->error)
            fail_msg("case %zu \"%s\": rc %d error %d (%s), expected %d (%s)", i, c->raw, rc, err,
                     colony_http_error_message(err), c->error, colony_http_error_message(c->error));
        assert_int_equal(colony_http_error_status(err), c->status);
        assert_true(strlen(colony_http_error_message(err)) > 0);
        colony_test_guarded_free(buf, len);
    }
}

/* NUL bytes inside messages need explicit lengths. */
static void rejections_with_nul(void **state)
{
    (void)state;
    static const char target[] = "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n";
    static const char value[] = "GET / HTTP/1.1\r\nHost: h\r\nFoo: a\0b\r\n\r\n";
    static const char method[] = "G\0T / HTTP/1.1\r\nHost: h\r\n\r\n";
    static const char name[] = "GET / HTTP/1.1\r\nHost: h\r\nF\0o: b\r\n\r\n";
    static const char reason[] = "HTTP/1.1 200 O\0K\r\n\r\n";
    colony_http_request req;
    colony_http_response res;
    colony_http_header headers[8];
    assert_int_equal(colony_http_parse_request(target, sizeof(target) - 1, &req, headers, 8, NULL),
                     COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_BAD_TARGET);
    assert_int_equal(colony_http_parse_request(value, sizeof(value) - 1, &req, headers, 8, NULL),
                     COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_BAD_HEADER_VALUE);
    assert_int_equal(colony_http_parse_request(method, sizeof(method) - 1, &req, headers, 8, NULL),
                     COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_BAD_METHOD);
    assert_int_equal(colony_http_parse_request(name, sizeof(name) - 1, &req, headers, 8, NULL),
                     COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_BAD_HEADER_NAME);
    assert_int_equal(
        colony_http_parse_response(reason, sizeof(reason) - 1, &res, headers, 8, 0, NULL),
        COLONY_EPROTO);
    assert_int_equal(res.msg.error, COLONY_HTTP_BAD_STATUS_LINE);
}

static int parse_req_str(const char *s, colony_http_request *req, colony_http_header *headers,
                         size_t max_headers, const colony_http_limits *lim)
{
    return colony_http_parse_request(s, strlen(s), req, headers, max_headers, lim);
}

static void limit_request_line(void **state)
{
    (void)state;
    colony_http_limits lim = {.max_request_line = 16};
    colony_http_request req;
    colony_http_header headers[8];
    /* "GET /12 HTTP/1.1" is exactly 16 bytes: allowed. */
    assert_true(parse_req_str("GET /12 HTTP/1.1\r\nHost: h\r\n\r\n", &req, headers, 8, &lim) > 0);
    assert_int_equal(parse_req_str("GET /123 HTTP/1.1\r\nHost: h\r\n\r\n", &req, headers, 8, &lim),
                     COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_URI_TOO_LONG);
    assert_int_equal(colony_http_error_status(req.msg.error), 414);
    /* Refused while incomplete: no line end within the limit. */
    assert_int_equal(parse_req_str("GET /aaaaaaaaaaaaaaaaaaaa", &req, headers, 8, &lim),
                     COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_URI_TOO_LONG);
    /* Up to the limit (plus CR), it waits. */
    assert_int_equal(parse_req_str("GET /12 HTTP/1.1\r", &req, headers, 8, &lim), COLONY_EAGAIN);
    assert_int_equal(parse_req_str("GET /1234567890a", &req, headers, 8, &lim), COLONY_EAGAIN);
    /* A status line over the limit. */
    colony_http_response res;
    const char *status = "HTTP/1.1 200 A very long reason\r\n\r\n";
    assert_int_equal(colony_http_parse_response(status, strlen(status), &res, headers, 8, 0, &lim),
                     COLONY_EPROTO);
    assert_int_equal(res.msg.error, COLONY_HTTP_HEADERS_TOO_LARGE);
}

static void limit_header_bytes(void **state)
{
    (void)state;
    colony_http_limits lim = {.max_header_bytes = 40};
    colony_http_request req;
    colony_http_header headers[8];
    const char *ok = "GET / HTTP/1.1\r\nHost: h\r\nA: 12345678\r\n\r\n"; /* 40 bytes */
    assert_int_equal(strlen(ok), 40);
    assert_int_equal(parse_req_str(ok, &req, headers, 8, &lim), 40);
    assert_int_equal(
        parse_req_str("GET / HTTP/1.1\r\nHost: h\r\nA: 123456789\r\n\r\n", &req, headers, 8, &lim),
        COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_HEADERS_TOO_LARGE);
    assert_int_equal(colony_http_error_status(req.msg.error), 431);
    /* Incomplete but already over: refused without waiting. */
    assert_int_equal(parse_req_str("GET / HTTP/1.1\r\nHost: h\r\nA: 1234567890123456789", &req,
                                   headers, 8, &lim),
                     COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_HEADERS_TOO_LARGE);
    assert_int_equal(parse_req_str("GET / HTTP/1.1\r\nHost: h\r\nA: 12345", &req, headers, 8, &lim),
                     COLONY_EAGAIN);
}

static void limit_header_count(void **state)
{
    (void)state;
    colony_http_limits lim = {.max_headers = 3};
    colony_http_request req;
    colony_http_header headers[8];
    const char *three = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    const char *four = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_true(parse_req_str(three, &req, headers, 8, &lim) > 0);
    assert_int_equal(req.msg.num_headers, 3);
    assert_int_equal(parse_req_str(four, &req, headers, 8, &lim), COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_TOO_MANY_HEADERS);
    assert_int_equal(colony_http_error_status(req.msg.error), 431);
    /* The array size caps too, below the limit. */
    assert_int_equal(parse_req_str(three, &req, headers, 2, NULL), COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_TOO_MANY_HEADERS);
    /* Detected before the head is complete. */
    assert_int_equal(
        parse_req_str("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC:", &req, headers, 8, &lim),
        COLONY_EPROTO);
}

static void limit_body(void **state)
{
    (void)state;
    colony_http_limits lim = {.max_body = 10};
    colony_http_request req;
    colony_http_header headers[8];
    assert_true(parse_req_str("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", &req,
                              headers, 8, &lim) > 0);
    assert_int_equal(parse_req_str("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", &req,
                                   headers, 8, &lim),
                     COLONY_EPROTO);
    assert_int_equal(req.msg.error, COLONY_HTTP_BODY_TOO_LARGE);
    assert_int_equal(colony_http_error_status(req.msg.error), 413);

    colony_http_chunked d;
    char out[64];
    size_t out_len;
    const char *ten = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    assert_int_equal(decode_all(&d, ten, strlen(ten), out, sizeof(out), &out_len, &lim), 1);
    assert_int_equal(out_len, 10);
    const char *eleven = "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n";
    assert_int_equal(decode_all(&d, eleven, strlen(eleven), out, sizeof(out), &out_len, &lim),
                     COLONY_EPROTO);
    assert_int_equal(d.error, COLONY_HTTP_BODY_TOO_LARGE);
    assert_int_equal(out_len, 5); /* refused at the size line, before any of its data */
}

static void chunked_rejections(void **state)
{
    (void)state;
    colony_http_limits big = {.max_body = UINT64_MAX};
    for (size_t i = 0; i < sizeof(chunk_rejects) / sizeof(chunk_rejects[0]); i++) {
        const chunk_reject *c = &chunk_rejects[i];
        size_t len = strlen(c->body);
        char *buf = colony_test_guarded_copy(c->body, len);
        colony_http_chunked d;
        char out[64];
        size_t out_len;
        const colony_http_limits *lim = c->error == COLONY_HTTP_BAD_CHUNK_SIZE ? &big : NULL;
        int rc = decode_all(&d, buf, len, out, sizeof(out), &out_len, lim);
        if (rc != COLONY_EPROTO || d.error != c->error)
            fail_msg("chunk case %zu \"%s\": rc %d error %d (%s)", i, c->body, rc, d.error,
                     colony_http_error_message(d.error));
        assert_int_equal(colony_http_error_status(d.error),
                         c->error == COLONY_HTTP_BODY_TOO_LARGE ? 413 : 400);
        /* The error is sticky. */
        size_t consumed, data_len;
        const char *data;
        assert_int_equal(
            colony_http_chunked_decode(&d, "0\r\n\r\n", 5, &consumed, &data, &data_len, lim),
            COLONY_EPROTO);
        assert_int_equal(consumed, 0);
        colony_test_guarded_free(buf, len);
    }
}

static void chunked_limits(void **state)
{
    (void)state;
    colony_http_limits lim = {.max_chunk_line = 8, .max_headers = 2, .max_header_bytes = 32};
    colony_http_chunked d;
    char out[64];
    size_t out_len;
    const char *ok = "5;a=bcd\r\nhello\r\n0\r\nA: 123\r\nB: 4\r\n\r\n";
    assert_int_equal(decode_all(&d, ok, strlen(ok), out, sizeof(out), &out_len, &lim), 1);
    assert_int_equal(out_len, 5);
    const char *long_ext = "5;a=bcdef\r\nhello\r\n0\r\n\r\n";
    assert_int_equal(decode_all(&d, long_ext, strlen(long_ext), out, sizeof(out), &out_len, &lim),
                     COLONY_EPROTO);
    assert_int_equal(d.error, COLONY_HTTP_CHUNK_LINE_TOO_LONG);
    const char *endless = "5;aaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* refused before any line end */
    assert_int_equal(decode_all(&d, endless, strlen(endless), out, sizeof(out), &out_len, &lim),
                     COLONY_EPROTO);
    assert_int_equal(d.error, COLONY_HTTP_CHUNK_LINE_TOO_LONG);
    const char *long_trailer = "0\r\nA: 1234567\r\n\r\n";
    assert_int_equal(
        decode_all(&d, long_trailer, strlen(long_trailer), out, sizeof(out), &out_len, &lim),
        COLONY_EPROTO);
    assert_int_equal(d.error, COLONY_HTTP_CHUNK_LINE_TOO_LONG);
    const char *three = "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_int_equal(decode_all(&d, three, strlen(three), out, sizeof(out), &out_len, &lim),
                     COLONY_EPROTO);
    assert_int_equal(d.error, COLONY_HTTP_TOO_MANY_HEADERS);
    const char *bytes = "0\r\nA: 123\r\nB: 123\r\nC";
    lim.max_headers = 100;
    lim.max_header_bytes = 16;
    assert_int_equal(decode_all(&d, bytes, strlen(bytes), out, sizeof(out), &out_len, &lim),
                     COLONY_EPROTO);
    assert_int_equal(d.error, COLONY_HTTP_HEADERS_TOO_LARGE);
}

static void chunked_incomplete_and_done(void **state)
{
    (void)state;
    colony_http_chunked d;
    colony_http_chunked_init(&d);
    size_t consumed, data_len;
    const char *data;
    /* Nothing to do with no input. */
    assert_int_equal(colony_http_chunked_decode(&d, "", 0, &consumed, &data, &data_len, NULL), 0);
    assert_int_equal(consumed, 0);
    /* The size line, then the data that is there. */
    assert_int_equal(
        colony_http_chunked_decode(&d, "3\r\nab", 5, &consumed, &data, &data_len, NULL), 0);
    assert_int_equal(consumed, 5);
    assert_int_equal(data_len, 2);
    assert_memory_equal(data, "ab", 2);
    assert_int_equal(d.chunk_remaining, 1);
    /* One slice per call: the rest of the chunk, then the caller calls again. */
    assert_int_equal(
        colony_http_chunked_decode(&d, "c\r\n0\r\n\r\nNEXT", 12, &consumed, &data, &data_len, NULL),
        0);
    assert_int_equal(data_len, 1);
    assert_int_equal(consumed, 1);
    assert_int_equal(
        colony_http_chunked_decode(&d, "\r\n0\r\n\r", 6, &consumed, &data, &data_len, NULL), 0);
    assert_int_equal(consumed, 6);
    assert_int_equal(data_len, 0);
    assert_int_equal(colony_http_chunked_decode(&d, "\nNEXT", 5, &consumed, &data, &data_len, NULL),
                     1);
    assert_int_equal(consumed, 1); /* stops at the end of the body: NEXT is not consumed */
    assert_int_equal(d.total, 3);
    assert_int_equal(colony_http_chunked_decode(&d, "NEXT", 4, &consumed, &data, &data_len, NULL),
                     1);
    assert_int_equal(consumed, 0);
}

/* prefix + run[0..run_len) (may hold NUL) + suffix into out; returns the length. */
static int build(char *out, const char *prefix, const char *run, size_t run_len, const char *suffix)
{
    size_t a = strlen(prefix), c = strlen(suffix);
    memcpy(out, prefix, a);
    memcpy(out + a, run, run_len);
    memcpy(out + a + run_len, suffix, c);
    return (int)(a + run_len + c);
}

/* Long values and targets are scanned 16 bytes at a time: a bad byte at every
 * position of a long run must still be found, and good bytes of every kind
 * (obs-text, HTAB, SP, "~") must pass, each input ending at a guarded page. */
static void long_runs_every_position(void **state)
{
    (void)state;
    static const unsigned char bad_value[] = {0x00, 0x01, 0x08, 0x0a, 0x1f, 0x7f};
    static const unsigned char good_value[] = {0x09, 0x20, 0x7e, 0x80, 0xff, 'a'};
    static const unsigned char bad_target[] = {0x00, 0x09, 0x7f, 0x80, 0xff};
    static const unsigned char good_target[] = {0x21, 0x7e, '%', 'z'};
    char msg[256];
    colony_http_request req;
    colony_http_header headers[4];
    for (size_t pos = 0; pos < 40; pos++) {
        char value[41], target[42];
        memset(value, 'v', 40);
        value[40] = 0;
        target[0] = '/';
        memset(target + 1, 't', 40);
        target[41] = 0;
        for (size_t k = 0; k < sizeof(bad_value) + sizeof(good_value); k++) {
            int bad = k < sizeof(bad_value);
            value[pos] = (char)(bad ? bad_value[k] : good_value[k - sizeof(bad_value)]);
            if (pos == 0 && !bad && (value[pos] == ' ' || value[pos] == '\t')) continue;
            int n = build(msg, "GET / HTTP/1.1\r\nHost: h\r\nX: ", value, 40, "Z\r\n\r\n");
            char *buf = colony_test_guarded_copy(msg, (size_t)n);
            int rc = colony_http_parse_request(buf, (size_t)n, &req, headers, 4, NULL);
            if (bad) {
                assert_int_equal(rc, COLONY_EPROTO);
                assert_int_equal(req.msg.error, COLONY_HTTP_BAD_HEADER_VALUE);
            } else {
                assert_int_equal(rc, n);
                assert_int_equal(headers[1].value_len, 41);
            }
            colony_test_guarded_free(buf, (size_t)n);
            value[pos] = 'v';
        }
        for (size_t k = 0; k < sizeof(bad_target) + sizeof(good_target); k++) {
            int bad = k < sizeof(bad_target);
            target[1 + pos] = (char)(bad ? bad_target[k] : good_target[k - sizeof(bad_target)]);
            int n = build(msg, "GET ", target, 41, " HTTP/1.1\r\nHost: h\r\n\r\n");
            char *buf = colony_test_guarded_copy(msg, (size_t)n);
            int rc = colony_http_parse_request(buf, (size_t)n, &req, headers, 4, NULL);
            if (bad) {
                assert_int_equal(rc, COLONY_EPROTO);
                assert_int_equal(req.msg.error, COLONY_HTTP_BAD_TARGET);
            } else {
                assert_int_equal(rc, n);
                assert_int_equal(req.target_len, 41);
            }
            colony_test_guarded_free(buf, (size_t)n);
            target[1 + pos] = 't';
        }
    }
}

static void helpers(void **state)
{
    (void)state;
    assert_string_equal(colony_http_status_reason(404), "Not Found");
    assert_string_equal(colony_http_status_reason(200), "OK");
    assert_string_equal(colony_http_status_reason(999), "");
    assert_string_equal(colony_http_error_message(COLONY_HTTP_SPACE_BEFORE_COLON),
                        "whitespace before colon in header field");
    for (int e = 1; e < COLONY_HTTP_ERROR_COUNT; e++) {
        int s = colony_http_error_status((colony_http_error)e);
        assert_true(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
        assert_non_null(colony_http_error_message((colony_http_error)e));
    }
    assert_int_equal(colony_http_error_status(COLONY_HTTP_ERROR_COUNT), 400);
    colony_http_limits lim = {.max_headers = 7};
    colony_http_limits_init(&lim);
    assert_int_equal(lim.max_headers, 7);
    assert_int_equal(lim.max_request_line, 8192);
    assert_int_equal(lim.max_header_bytes, 65536);
    assert_int_equal(lim.max_body, 1024 * 1024);
    assert_int_equal(lim.max_chunk_line, 4096);

    colony_http_request req;
    colony_http_header headers[4];
    assert_true(parse_req_str("GET / HTTP/1.1\r\nHost: h\r\nX-Req-ID: 7\r\n\r\n", &req, headers, 4,
                              NULL) > 0);
    const colony_http_header *h = colony_http_find_header(&req.msg, "x-req-id");
    assert_non_null(h);
    assert_memory_equal(h->value, "7", 1);
    assert_null(colony_http_find_header(&req.msg, "x-req"));
    assert_null(colony_http_find_header(&req.msg, "x-req-idx"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_corpus),
        cmocka_unit_test(pipelined_second_request),
        cmocka_unit_test(rejections),
        cmocka_unit_test(rejections_with_nul),
        cmocka_unit_test(limit_request_line),
        cmocka_unit_test(limit_header_bytes),
        cmocka_unit_test(limit_header_count),
        cmocka_unit_test(limit_body),
        cmocka_unit_test(chunked_rejections),
        cmocka_unit_test(chunked_limits),
        cmocka_unit_test(chunked_incomplete_and_done),
        cmocka_unit_test(long_runs_every_position),
        cmocka_unit_test(helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
