/* FNV-1a 64, the byte hash several modules use for fingerprints and keys
 * (balancer keys, discovery snapshots). Not for untrusted-key hash tables
 * without a mixing step or a seed. */
#ifndef COLONY_CORE_HASH_H
#define COLONY_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define COLONY_FNV1A_OFFSET 0xcbf29ce484222325ull

/* Continues hash h over n bytes of data (start with COLONY_FNV1A_OFFSET). */
static inline uint64_t colony__fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#endif
