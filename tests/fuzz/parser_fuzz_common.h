/* Shared by the HTTP parser fuzz targets: decode a chunked body whole and in
 * two pieces, check the invariants and that both ways agree. */
#ifndef COLONY_PARSER_FUZZ_COMMON_H
#define COLONY_PARSER_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "colony/http_parser.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct chunked_result {
    int rc;
    colony_http_error error;
    size_t used;
    uint64_t data_len;
    uint64_t data_hash;
} chunked_result;

/* Feeds in[0..len) in pieces of at most `piece` bytes, each copied to its own
 * exact-size allocation so ASan sees any over-read. */
static inline chunked_result chunked_run(const uint8_t *in, size_t len, size_t piece,
                                         const colony_http_limits *lim)
{
    chunked_result r = {0, COLONY_HTTP_OK, 0, 0, 1469598103934665603ULL};
    colony_http_chunked d;
    colony_http_chunked_init(&d);
    size_t off = 0;
    while (off < len && r.rc == 0) {
        size_t n = len - off < piece ? len - off : piece;
        char *buf = malloc(n ? n : 1);
        FUZZ_CHECK(buf != NULL);
        memcpy(buf, in + off, n);
        size_t left = n;
        const char *p = buf;
        for (;;) {
            size_t consumed = 0, data_len = 0;
            const char *data = NULL;
            r.rc = colony_http_chunked_decode(&d, p, left, &consumed, &data, &data_len, lim);
            FUZZ_CHECK(consumed <= left);
            FUZZ_CHECK(r.rc == 0 || r.rc == 1 || r.rc == COLONY_EPROTO);
            if (data_len) {
                FUZZ_CHECK(data >= p && data + data_len <= p + left);
                for (size_t i = 0; i < data_len; i++)
                    r.data_hash = (r.data_hash ^ (uint8_t)data[i]) * 1099511628211ULL;
                r.data_len += data_len;
            }
            FUZZ_CHECK(r.rc != 1 || data_len == 0);
            p += consumed;
            left -= consumed;
            r.used += consumed;
            if (r.rc != 0 || left == 0) break;
            FUZZ_CHECK(consumed > 0);
        }
        free(buf);
        off += n;
    }
    r.error = d.error;
    FUZZ_CHECK((r.rc == COLONY_EPROTO) == (r.error != COLONY_HTTP_OK));
    FUZZ_CHECK(r.data_len == d.total);
    FUZZ_CHECK(r.data_len <= (lim ? lim->max_body : 1024 * 1024));
    return r;
}

/* Whole, split at `split`, and (for small inputs) byte by byte must agree. */
static inline void chunked_check(const uint8_t *in, size_t len, size_t split,
                                 const colony_http_limits *lim)
{
    chunked_result whole = chunked_run(in, len, len ? len : 1, lim);
    size_t piece = split ? split : 1;
    chunked_result pieces = chunked_run(in, len, piece, lim);
    FUZZ_CHECK(whole.rc == pieces.rc && whole.error == pieces.error);
    FUZZ_CHECK(whole.data_len == pieces.data_len && whole.data_hash == pieces.data_hash);
    if (whole.rc == 1) FUZZ_CHECK(whole.used == pieces.used);
    if (len <= 512) {
        chunked_result bytes = chunked_run(in, len, 1, lim);
        FUZZ_CHECK(whole.rc == bytes.rc && whole.error == bytes.error);
        FUZZ_CHECK(whole.data_hash == bytes.data_hash);
    }
}

/* Limits picked by a fuzzer byte: defaults or small ones that the input can reach. */
static inline void fuzz_limits(uint8_t mode, colony_http_limits *lim)
{
    memset(lim, 0, sizeof(*lim));
    if (mode & 1) {
        lim->max_request_line = 16 + (mode >> 1);
        lim->max_header_bytes = 64 + 4 * (size_t)mode;
        lim->max_headers = 1 + (mode >> 4);
        lim->max_body = 1 + (uint64_t)mode * 16;
        lim->max_chunk_line = 4 + (mode >> 2);
    }
    colony_http_limits_init(lim);
}

#endif
