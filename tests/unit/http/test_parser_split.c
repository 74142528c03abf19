/* The parser gives the same answer however the input is split: heads are
 * re-parsed with growing prefixes (EAGAIN until complete, then the same
 * result), chunked bodies are fed in two pieces at every split point and byte
 * by byte. Every piece ends at an inaccessible page, so an over-read crashes. */
#include "test_support.h"
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "colony/http_parser.h"
#include "parser_cases.h"

/* Parses buf[0..len) (copied to a guarded page) as a request or response;
 * returns the result and the error. */
static int parse_guarded(const char *raw, size_t len, int is_response, int request_was_head,
                         colony_http_error *err)
{
    char *buf = colony_test_guarded_copy(raw, len);
    colony_http_request req;
    colony_http_response res;
    colony_http_header headers[CASE_MAX_HEADERS];
    int rc;
    if (is_response) {
        rc = colony_http_parse_response(buf, len, &res, headers, CASE_MAX_HEADERS, request_was_head,
                                        NULL);
        *err = res.msg.error;
    } else {
        rc = colony_http_parse_request(buf, len, &req, headers, CASE_MAX_HEADERS, NULL);
        *err = req.msg.error;
    }
    colony_test_guarded_free(buf, len);
    return rc;
}

static void heads_with_growing_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < VALID_CASE_COUNT; i++) {
        const valid_case *c = &valid_cases[i];
        size_t len = strlen(c->raw);
        size_t head_len = case_head_len(c);
        for (size_t k = 0; k < head_len; k++) {
            colony_http_error err;
            int rc = parse_guarded(c->raw, k, c->is_response, c->request_was_head, &err);
            if (rc != COLONY_EAGAIN)
                fail_msg("%s: prefix %zu gave %d (error %d)", c->name, k, rc, err);
        }
        for (size_t k = head_len; k <= len; k++) {
            char *buf = colony_test_guarded_copy(c->raw, k);
            colony_http_request req;
            colony_http_response res;
            colony_http_header headers[CASE_MAX_HEADERS];
            int rc = case_parse(c, buf, k, &req, &res, headers, CASE_MAX_HEADERS);
            case_check(c, buf, k, rc, &req, &res);
            colony_test_guarded_free(buf, k);
        }
    }
}

/* Feeds body[0..len) to a decoder as the pieces [0, split) and [split, len),
 * each in its own guarded copy, the way a connection would (keep calling
 * while input remains and the decoder makes progress). Returns the final
 * result; appends decoded data to out. */
static int feed(colony_http_chunked *d, const char *piece, size_t len, char *out, size_t *out_len,
                size_t out_cap, size_t *used, const colony_http_limits *lim)
{
    char *buf = colony_test_guarded_copy(piece, len);
    const char *p = buf;
    size_t left = len;
    int rc = 0;
    for (;;) {
        size_t consumed, data_len;
        const char *data;
        rc = colony_http_chunked_decode(d, p, left, &consumed, &data, &data_len, lim);
        assert_true(consumed <= left);
        if (data_len) {
            assert_true(data >= p && data + data_len <= p + left);
            assert_true(*out_len + data_len <= out_cap);
            memcpy(out + *out_len, data, data_len);
            *out_len += data_len;
        }
        p += consumed;
        left -= consumed;
        *used += consumed;
        if (rc != 0 || left == 0) break;
        assert_true(consumed > 0); /* progress, or the caller would spin */
    }
    colony_test_guarded_free(buf, len);
    return rc;
}

static void chunked_bodies_split_everywhere(void **state)
{
    (void)state;
    for (size_t i = 0; i < VALID_CASE_COUNT; i++) {
        const valid_case *c = &valid_cases[i];
        if (c->body_kind != COLONY_HTTP_BODY_CHUNKED) continue;
        const char *body = c->raw + case_head_len(c);
        size_t len = strlen(body);
        for (size_t split = 0; split <= len; split++) {
            colony_http_chunked d;
            colony_http_chunked_init(&d);
            char out[256];
            size_t out_len = 0, used = 0;
            int rc = feed(&d, body, split, out, &out_len, sizeof(out), &used, NULL);
            assert_int_equal(rc, split == len ? 1 : 0);
            if (split < len)
                rc = feed(&d, body + split, len - split, out, &out_len, sizeof(out), &used, NULL);
            if (rc != 1) fail_msg("%s: split %zu: rc %d error %d", c->name, split, rc, d.error);
            assert_int_equal(used, len);
            assert_int_equal(out_len, strlen(c->body));
            assert_memory_equal(out, c->body, out_len);
        }
        /* Byte by byte. */
        colony_http_chunked d;
        colony_http_chunked_init(&d);
        char out[256];
        size_t out_len = 0, used = 0;
        int rc = 0;
        for (size_t k = 0; k < len; k++) {
            rc = feed(&d, body + k, 1, out, &out_len, sizeof(out), &used, NULL);
            assert_int_equal(rc, k + 1 == len ? 1 : 0);
        }
        assert_int_equal(out_len, strlen(c->body));
        assert_memory_equal(out, c->body, out_len);
    }
}

/* A prefix of a refused message is either incomplete or refused for the same
 * reason: errors are found left to right. */
static void rejections_are_prefix_stable(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]); i++) {
        const reject_case *c = &reject_cases[i];
        size_t len = strlen(c->raw);
        int seen_error = 0;
        for (size_t k = 0; k <= len; k++) {
            colony_http_error err;
            int rc = parse_guarded(c->raw, k, c->is_response, 0, &err);
            if (rc == COLONY_EAGAIN && !seen_error) continue;
            if (rc != COLONY_EPROTO || err != c->error)
                fail_msg("case %zu \"%s\" prefix %zu: rc %d error %d, expected %d", i, c->raw, k,
                         rc, err, c->error);
            seen_error = 1;
        }
        assert_true(seen_error);
    }
}

static void chunked_rejections_byte_by_byte(void **state)
{
    (void)state;
    colony_http_limits big = {.max_body = UINT64_MAX};
    for (size_t i = 0; i < sizeof(chunk_rejects) / sizeof(chunk_rejects[0]); i++) {
        const chunk_reject *c = &chunk_rejects[i];
        const colony_http_limits *lim = c->error == COLONY_HTTP_BAD_CHUNK_SIZE ? &big : NULL;
        size_t len = strlen(c->body);
        colony_http_chunked d;
        colony_http_chunked_init(&d);
        char out[64];
        size_t out_len = 0, used = 0;
        int rc = 0;
        for (size_t k = 0; k < len && rc == 0; k++)
            rc = feed(&d, c->body + k, 1, out, &out_len, sizeof(out), &used, lim);
        if (rc != COLONY_EPROTO || d.error != c->error)
            fail_msg("chunk case %zu \"%s\": rc %d error %d", i, c->body, rc, d.error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heads_with_growing_prefixes),
        cmocka_unit_test(chunked_bodies_split_everywhere),
        cmocka_unit_test(rejections_are_prefix_stable),
        cmocka_unit_test(chunked_rejections_byte_by_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
