/* libFuzzer target: the chunked decoder alone, whole vs split vs byte by byte.
 * Input: [split byte][limits byte][body...]. */
#include "parser_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    colony_http_limits lim;
    fuzz_limits(data[1], &lim);
    size_t len = size - 2;
    chunked_check(data + 2, len, len ? data[0] % (len + 1) : 0, &lim);
    return 0;
}
