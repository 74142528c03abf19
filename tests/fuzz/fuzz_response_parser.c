/* libFuzzer target: response heads (and chunked bodies). Same invariants as
 * the request target. Input: [split byte][limits byte][flags][message...];
 * flags bit 0 = the request was HEAD. */
#include "parser_fuzz_common.h"

#define MAX_FIELDS 64

static int parse(const char *buf, size_t len, colony_http_response *res,
                 colony_http_header *headers, int was_head, const colony_http_limits *lim)
{
    int rc = colony_http_parse_response(buf, len, res, headers, MAX_FIELDS, was_head, lim);
    FUZZ_CHECK(rc > 0 || rc == COLONY_EAGAIN || rc == COLONY_EPROTO);
    if (rc == COLONY_EPROTO)
        FUZZ_CHECK(res->msg.error > COLONY_HTTP_OK && res->msg.error < COLONY_HTTP_ERROR_COUNT);
    if (rc > 0) {
        const char *end = buf + rc;
        FUZZ_CHECK((size_t)rc <= len && (size_t)rc <= lim->max_header_bytes);
        FUZZ_CHECK(res->status >= 100 && res->status <= 999);
        FUZZ_CHECK(res->reason >= buf && res->reason + res->reason_len <= end);
        FUZZ_CHECK(res->msg.num_headers <= lim->max_headers);
        for (size_t i = 0; i < res->msg.num_headers; i++) {
            const colony_http_header *h = &headers[i];
            FUZZ_CHECK(h->name >= buf && h->name_len > 0 && h->name + h->name_len <= end);
            FUZZ_CHECK(h->value >= buf && h->value + h->value_len <= end);
        }
        if (was_head || res->status < 200 || res->status == 204 || res->status == 304)
            FUZZ_CHECK(res->msg.body_kind == COLONY_HTTP_BODY_NONE);
        if (res->msg.body_kind == COLONY_HTTP_BODY_EOF) FUZZ_CHECK(!res->msg.keep_alive);
        if (res->msg.body_kind == COLONY_HTTP_BODY_LENGTH)
            FUZZ_CHECK(res->msg.content_length > 0 && res->msg.content_length <= lim->max_body);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    colony_http_limits lim;
    fuzz_limits(data[1], &lim);
    int was_head = data[2] & 1;
    const char *msg = (const char *)data + 3;
    size_t len = size - 3;
    size_t split = len ? data[0] % (len + 1) : 0;

    colony_http_response res;
    colony_http_header headers[MAX_FIELDS];
    int whole = parse(msg, len, &res, headers, was_head, &lim);
    colony_http_error whole_error = res.msg.error;
    colony_http_body_kind kind = res.msg.body_kind;

    char *prefix = malloc(split ? split : 1);
    FUZZ_CHECK(prefix != NULL);
    memcpy(prefix, msg, split);
    colony_http_response pres;
    colony_http_header pheaders[MAX_FIELDS];
    int part = parse(prefix, split, &pres, pheaders, was_head, &lim);
    if (part > 0) FUZZ_CHECK(whole == part && pres.msg.body_kind == kind);
    if (part == COLONY_EPROTO) FUZZ_CHECK(whole == COLONY_EPROTO && pres.msg.error == whole_error);
    free(prefix);

    if (whole > 0 && kind == COLONY_HTTP_BODY_CHUNKED) {
        size_t body_len = len - (size_t)whole;
        chunked_check(data + 3 + whole, body_len, body_len ? data[0] % (body_len + 1) : 0, &lim);
    }
    return 0;
}
