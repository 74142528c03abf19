/* libFuzzer target: request heads, then the chunked body when the head says
 * so. Checks that lengths and pointers stay inside the input, that a prefix
 * never disagrees with the whole input, and that the chunked decoder gives
 * the same result however the body is split.
 * Input: [split byte][limits byte][message...]. */
#include "parser_fuzz_common.h"

#define MAX_FIELDS 64

static int parse(const char *buf, size_t len, colony_http_request *req, colony_http_header *headers,
                 const colony_http_limits *lim)
{
    int rc = colony_http_parse_request(buf, len, req, headers, MAX_FIELDS, lim);
    FUZZ_CHECK(rc > 0 || rc == COLONY_EAGAIN || rc == COLONY_EPROTO);
    if (rc == COLONY_EPROTO)
        FUZZ_CHECK(req->msg.error > COLONY_HTTP_OK && req->msg.error < COLONY_HTTP_ERROR_COUNT);
    if (rc > 0) {
        const char *end = buf + rc;
        FUZZ_CHECK((size_t)rc <= len && (size_t)rc <= lim->max_header_bytes);
        FUZZ_CHECK(req->method >= buf && req->method + req->method_len <= end);
        FUZZ_CHECK(req->target >= buf && req->target + req->target_len <= end);
        FUZZ_CHECK(req->method_len > 0 && req->target_len > 0);
        FUZZ_CHECK(req->target_len <= lim->max_request_line);
        FUZZ_CHECK(req->msg.num_headers <= lim->max_headers);
        for (size_t i = 0; i < req->msg.num_headers; i++) {
            const colony_http_header *h = &headers[i];
            FUZZ_CHECK(h->name >= buf && h->name_len > 0 && h->name + h->name_len <= end);
            FUZZ_CHECK(h->value >= buf && h->value + h->value_len <= end);
            FUZZ_CHECK(memchr(h->value, '\r', h->value_len) == NULL);
            FUZZ_CHECK(memchr(h->value, '\n', h->value_len) == NULL);
        }
        FUZZ_CHECK(req->msg.version_minor == 0 || req->msg.version_minor == 1);
        FUZZ_CHECK(req->msg.body_kind != COLONY_HTTP_BODY_EOF);
        if (req->msg.body_kind == COLONY_HTTP_BODY_LENGTH)
            FUZZ_CHECK(req->msg.content_length > 0 && req->msg.content_length <= lim->max_body);
        if (req->msg.body_kind == COLONY_HTTP_BODY_CHUNKED) FUZZ_CHECK(req->msg.version_minor == 1);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    colony_http_limits lim;
    fuzz_limits(data[1], &lim);
    const char *msg = (const char *)data + 2;
    size_t len = size - 2;
    size_t split = len ? data[0] % (len + 1) : 0;

    colony_http_request req;
    colony_http_header headers[MAX_FIELDS];
    int whole = parse(msg, len, &req, headers, &lim);
    colony_http_error whole_error = req.msg.error;
    colony_http_body_kind kind = req.msg.body_kind;

    char *prefix = malloc(split ? split : 1);
    FUZZ_CHECK(prefix != NULL);
    memcpy(prefix, msg, split);
    colony_http_request preq;
    colony_http_header pheaders[MAX_FIELDS];
    int part = parse(prefix, split, &preq, pheaders, &lim);
    if (part > 0) FUZZ_CHECK(whole == part && preq.msg.body_kind == kind);
    if (part == COLONY_EPROTO) FUZZ_CHECK(whole == COLONY_EPROTO && preq.msg.error == whole_error);
    free(prefix);

    if (whole > 0 && kind == COLONY_HTTP_BODY_CHUNKED) {
        size_t body_len = len - (size_t)whole;
        chunked_check(data + 2 + whole, body_len, body_len ? data[0] % (body_len + 1) : 0, &lim);
    }
    return 0;
}
