/* libFuzzer target: the broker's RESP2 parser (src/broker/resp/parse.c).
 * Input: [split byte][limits byte][bytes...]. The bytes are parsed as a
 * pipeline, once whole and once fed in two parts at the split point; both
 * ways must give the same commands and the same error, every argument must
 * lie inside the input or the scratch buffer, and the limits must hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "broker/resp/resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses in[0..len) as a pipeline, first offering only in[0..split) to each
 * command; returns a checksum of the commands and the final status. */
static uint64_t run(const char *in, size_t len, size_t split, const colony__resp_limits *lim)
{
    colony__resp_parser p;
    colony__resp_parser_init(&p, lim);
    uint64_t sum = 1469598103934665603ULL;
    size_t at = 0;
    for (;;) {
        long rc = 0;
        if (split > at && split < len) rc = colony__resp_parse(&p, in + at, split - at);
        if (rc == 0) rc = colony__resp_parse(&p, in + at, len - at);
        if (rc <= 0) {
            if (rc == COLONY_EPROTO && !p.error[0]) abort();
            sum = (sum ^ (uint64_t)(-rc)) * 1099511628211ULL;
            for (const char *e = p.error; rc == COLONY_EPROTO && *e; e++)
                sum = (sum ^ (uint8_t)*e) * 1099511628211ULL;
            break;
        }
        /* inline lines are bounded by their 64 KiB, not by max_args (as in Redis) */
        if ((size_t)rc > len - at || (p.kind == '*' && p.nargs > lim->max_args)) abort();
        for (size_t i = 0; i < p.nargs; i++) {
            const char *a = p.args[i].ptr;
            int in_input = a >= in + at && a + p.args[i].len <= in + at + (size_t)rc;
            int in_scratch = p.scratch.data && a >= p.scratch.data &&
                             a + p.args[i].len <= p.scratch.data + p.scratch.len;
            if (!a || (p.args[i].len && !in_input && !in_scratch)) abort();
            if (p.args[i].len > lim->max_bulk && in_input) abort();
            for (size_t k = 0; k < p.args[i].len; k++)
                sum = (sum ^ (uint8_t)a[k]) * 1099511628211ULL;
            sum = (sum ^ 0x100) * 1099511628211ULL;
        }
        at += (size_t)rc;
        colony__resp_parser_next(&p);
    }
    colony__resp_parser_free(&p);
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    colony__resp_limits lim = {.max_bulk = (size_t)(data[1] & 0x0f) * 8 + 1,
                               .max_args = (size_t)(data[1] >> 4) + 1};
    if (data[1] == 0xff) lim = (colony__resp_limits){64u << 20, 1u << 20};
    const char *in = (const char *)data + 2;
    size_t len = size - 2;
    size_t split = len ? data[0] % (len + 1) : 0;
    if (run(in, len, split, &lim) != run(in, len, len, &lim)) abort();
    return 0;
}
